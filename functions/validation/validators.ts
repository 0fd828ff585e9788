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

const ARTICLE: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  null: 'null',
};

/**
 * One readable sentence for the first AJV error, naming where and what in the
 * words of whoever wrote the input: `fieldWords` names a field as the user
 * wrote it (the list form's "the interface name (after '@')"); others are
 * named by their path.
 */
export function describeFirstError(
  validate: ValidateFunction,
  subject: string,
  fieldWords?: Readonly<Record<string, string>>,
): string {
  const error: ErrorObject | undefined = validate.errors?.[0];
  if (!error) return `${subject} is invalid`;
  const path = jsonPointerToDots(error.instancePath);
  const where =
    path === '' ? subject : `${subject}${fieldWords ? ': ' : ' field '}${fieldWords?.[path] ?? JSON.stringify(path)}`;
  const limit = Number(error.params.limit);
  switch (error.keyword) {
    case 'pattern':
      return `${where} must be ${PATTERN_WORDS[String(error.params.pattern)] ?? `like ${error.params.pattern}`}`;
    case 'required':
      return `${where} has no "${error.params.missingProperty}", which is required`;
    case 'const':
      return `${where} must be ${JSON.stringify(error.params.allowedValue)}`;
    case 'additionalProperties':
      return `${where} has unknown field "${error.params.additionalProperty}"`;
    case 'type':
      return `${where} must be ${ARTICLE[String(error.params.type)] ?? error.params.type}`;
    case 'minLength':
      return limit === 1 ? `${where} is empty` : `${where} is shorter than ${limit} characters`;
    case 'maxLength':
      return `${where} is longer than ${limit} characters`;
    case 'minItems':
      return `${where} must have at least ${limit} item${limit === 1 ? '' : 's'}`;
    case 'maxItems':
      return `${where} must have at most ${limit} item${limit === 1 ? '' : 's'}`;
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
