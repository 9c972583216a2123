/**
 * Request validation by the routes' JSON schemas, with errors that read like the CLI's: one line
 * naming the field and what is wrong with it (`limit must be at most 1000, got 5000`,
 * `parameter input is 1048576 characters long; at most 65536 are allowed`). A value is shown
 * only briefly, so a huge one never comes back in the answer.
 */
import type { FastifySchemaValidationError } from 'fastify';
import { isoDateOption } from '../core/dates.ts';
import { UsageError, errorMessage } from '../core/errors.ts';

/** What a schema validated: Fastify's SchemaErrorDataVar. */
type SchemaErrorDataVar = 'body' | 'headers' | 'params' | 'querystring';

/** Ajv options for Fastify: errors carry the data and schema they are about; nothing is dropped silently. */
export const AJV_OPTIONS = { customOptions: { verbose: true, allowUnionTypes: true, removeAdditional: false, allErrors: false, coerceTypes: 'array' as const } };

interface AjvError extends FastifySchemaValidationError {
  data?: unknown;
  parentSchema?: { title?: string };
}

const brief = (v: unknown) => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

const TYPES: Record<string, string> = {
  integer: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', object: 'an object', array: 'an array', null: 'null',
};
const typeText = (t: unknown) => (Array.isArray(t) ? t.filter((x) => x !== 'null').map((x) => TYPES[x] ?? x).join(' or ') : (TYPES[String(t)] ?? String(t)));

/** The name of the field an error is about, as a user would say it. */
function fieldName(e: AjvError, dataVar: SchemaErrorDataVar, extra?: string): string {
  if (e.parentSchema?.title && !extra) return e.parentSchema.title;
  const path = [...e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')), ...(extra ? [extra] : [])];
  if (dataVar === 'body' && path[0] === 'params' && path.length === 2) return `parameter ${path[1]}`;
  if (path.length === 0) return dataVar === 'querystring' ? 'the query' : dataVar === 'body' ? 'the body' : dataVar;
  return path.join('.');
}

/** One error of a route's schema as one clear line. */
export function validationMessage(e: AjvError, dataVar: SchemaErrorDataVar): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      if (dataVar === 'querystring' && Array.isArray(e.data)) return `query parameter ${fieldName(e, dataVar)} is given ${e.data.length} times; give it once`;
      return `${fieldName(e, dataVar)} must be ${typeText(p.type)}, got ${brief(e.data)}`;
    case 'minimum':
      return `${fieldName(e, dataVar)} must be at least ${p.limit}, got ${brief(e.data)}`;
    case 'maximum':
      return `${fieldName(e, dataVar)} must be at most ${p.limit}, got ${brief(e.data)}`;
    case 'maxLength':
      return `${fieldName(e, dataVar)} is ${String(e.data).length} characters long; at most ${p.limit} are allowed`;
    case 'minLength':
      return `${fieldName(e, dataVar)} must not be empty`;
    case 'enum':
      return `${fieldName(e, dataVar)} must be one of ${(p.allowedValues as unknown[]).join(', ')}, got ${brief(e.data)}`;
    case 'format':
      return `${fieldName(e, dataVar)} must be ${p.format === 'date-time' ? 'an ISO-8601 time such as 2024-01-15T10:00:00Z' : `a ${p.format}`}, got ${brief(e.data)}`;
    case 'additionalProperties':
      return dataVar === 'querystring'
        ? `unknown query parameter ${String(p.additionalProperty)}`
        : `${fieldName(e, dataVar) === 'the body' ? 'the body has' : `${fieldName(e, dataVar)} has`} an unknown property ${String(p.additionalProperty)}`;
    case 'required':
      return `${fieldName(e, dataVar, String(p.missingProperty))} is required`;
    default:
      return `${fieldName(e, dataVar)} ${e.message ?? 'is not valid'}`;
  }
}

/** Fastify's schemaErrorFormatter: the first error, as a UsageError (answered 400). */
export function schemaErrorFormatter(errors: FastifySchemaValidationError[], dataVar: SchemaErrorDataVar): Error {
  return new UsageError(validationMessage(errors[0] as AjvError, dataVar));
}

/**
 * A date in the query string: as the CLI reads one, and when it was refused because an offset's
 * `+` arrived as a space (a URL's query reads `+` so), saying how to send it.
 */
export function queryDate(what: string, text: string): Date {
  try {
    return isoDateOption(what, text);
  } catch (err) {
    if (err instanceof UsageError && /\d \d{2}(:?\d{2})?$/.test(text)) {
      throw new UsageError(`${errorMessage(err)}: a + in a URL's query string reads as a space, so send an offset's + as %2B`);
    }
    throw err;
  }
}
