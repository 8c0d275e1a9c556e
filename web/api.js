// api.js: talking to gand's HTTP API (DESIGN §5), and turning every failure into
// a message a person can act on. Problems come back as application/problem+json
// ({type, title, status, detail, field}); their detail is what we show.

export class ApiError extends Error {
  constructor({ method, path, status, title, detail, field, type }) {
    const where = `${method} ${path}`;
    const what = detail || title || `HTTP ${status}`;
    super(`${what}${field ? ` (field: ${field})` : ''}`);
    this.name = 'ApiError';
    this.method = method;
    this.path = path;
    this.status = status;
    this.title = title || '';
    this.detail = detail || '';
    this.field = field || null;
    this.type = type || '';
    this.where = where;
  }
}

export class NetworkError extends Error {
  constructor(method, path, cause) {
    super(`cannot reach gand (${method} ${path}): ${cause && cause.message ? cause.message : cause}`);
    this.name = 'NetworkError';
    this.method = method;
    this.path = path;
  }
}

/* The ApiError of a response that is not ok (its problem+json, or its text). */
export async function problemFrom(res, method, path) {
  const type = res.headers.get('Content-Type') || '';
  let body = null;
  let text = '';
  try {
    text = await res.text();
    if (type.includes('json')) body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body && typeof body === 'object') {
    return new ApiError({ method, path, status: res.status, title: body.title || res.statusText,
                          detail: body.detail, field: body.field, type: body.type });
  }
  const snippet = text.trim().slice(0, 200);
  return new ApiError({ method, path, status: res.status, title: res.statusText,
                        detail: `HTTP ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}` });
}

/*
 * Call the API. body (an object) is sent as JSON with contentType. Resolves to
 * the parsed JSON answer (null for 204); rejects with ApiError (the server said
 * no) or NetworkError (it could not be asked).
 */
export async function api(path, { method = 'GET', body, contentType = 'application/json', signal } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const init = { method, headers, cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = contentType;
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new NetworkError(method, path, e);
  }
  if (!res.ok) throw await problemFrom(res, method, path);
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch (e) {
    throw new ApiError({ method, path, status: res.status, title: 'Bad answer',
                         detail: `the answer to ${method} ${path} is not JSON (${e.message})` });
  }
}

/* Fetch a binary resource (a PNG): resolves to a Blob, rejects like api(). */
export async function fetchBlob(path, { signal } = {}) {
  let res;
  try {
    res = await fetch(path, { cache: 'no-store', signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new NetworkError('GET', path, e);
  }
  if (!res.ok) throw await problemFrom(res, 'GET', path);
  return res.blob();
}

/* One line for a person: what failed, and the server's words for why. */
export function describe(err) {
  if (err instanceof ApiError) {
    const status = `${err.status}${err.title ? ` ${err.title}` : ''}`;
    return `${err.where} → ${status}: ${err.detail || err.title}${err.field ? ` [field: ${err.field}]` : ''}`;
  }
  if (err instanceof NetworkError) return err.message;
  return `unexpected error: ${err && err.message ? err.message : String(err)}`;
}

export const runPath = (id) => `/api/v1/runs/${encodeURIComponent(id)}`;
