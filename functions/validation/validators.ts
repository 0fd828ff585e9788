// AJV validators for every input we read. `npm run build` compiles schemas/
// into standalone code (scripts/generate-validators.mjs), so that starting the
// function costs no schema compilation. Pure: no I/O.
import type { ErrorObject, ValidateFunction } from 'ajv';
import selectionSchema from '../../schemas/network-selection.json' with { type: 'json' };
import * as generated from './generated/validators.js';

export const validateAdmissionReview = generated.validateAdmissionReview as ValidateFunction;
export const validateNad = generated.validateNad as ValidateFunction;
export const validateSelection = generated.validateSelection as ValidateFunction;
export const validateSwitchesConfig = generated.validateSwitchesConfig as ValidateFunction;

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
