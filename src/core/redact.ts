/**
 * Hides the password of every URL in a text: `postgres://user:secret@host/db` becomes
 * `postgres://user:***@host/db`. Every message and log line that can hold a database URL goes
 * through it (CLI errors, the API's errors, logs). The password runs to the last `@` of the
 * word, so a password holding `@`, `/` or `:` is hidden whole (at worst, a bit more is hidden).
 */
export function redactUrls(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s"]*):[^\s]*@/gi, '$1:***@');
}
