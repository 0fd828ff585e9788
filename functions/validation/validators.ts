// AJV validators for every input we read, compiled once at module load.
// Pure: no I/O. The schemas live in schemas/ and are bundled as JSON modules.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import admissionReviewSchema from '../../schemas/admission-review.json' with { type: 'json' };
import podSchema from '../../schemas/pod.json' with { type: 'json' };
import nadSchema from '../../schemas/nad.json' with { type: 'json' };
import selectionSchema from '../../schemas/network-selection.json' with { type: 'json' };
import switchesSchema from '../../schemas/control-switches.json' with { type: 'json' };

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
ajv.addSchema(podSchema);

export const validateAdmissionReview = ajv.compile(admissionReviewSchema);
export const validateNad = ajv.compile(nadSchema);
export const validateSelection = ajv.compile(selectionSchema);
export const validateSwitchesConfig = ajv.compile(switchesSchema);

/** Patterns used in the schemas, with the words a user should read instead. */
const PATTERN_WORDS: Record<string, string> = {
  [selectionSchema.$defs.dnsLabel.pattern]:
    "a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
  [selectionSchema.$defs.interfaceName.pattern]:
    "an interface name without '/', ':' or white space, and not '.' or '..'",
};

/** One readable sentence for the first AJV error, naming where and what. */
export function describeFirstError(validate: ValidateFunction, subject: string): string {
  const error: ErrorObject | undefined = validate.errors?.[0];
  if (!error) return `${subject} is invalid`;
  const where = error.instancePath === '' ? subject : `${subject} field ${JSON.stringify(jsonPointerToDots(error.instancePath))}`;
  switch (error.keyword) {
    case 'pattern':
      return `${where} must be ${PATTERN_WORDS[String(error.params.pattern)] ?? `like ${error.params.pattern}`}`;
    case 'required':
      return `${where} is missing required field "${error.params.missingProperty}"`;
    case 'const':
      return `${where} must be ${JSON.stringify(error.params.allowedValue)}`;
    case 'additionalProperties':
      return `${where} has unknown field "${error.params.additionalProperty}"`;
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}

function jsonPointerToDots(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}
