// api.js: talking to gand's HTTP API, and turning every failure into
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

/*
 * The bearer token (README "Security"). When the API answers 401 the page asks for
 * the token once (concurrent 401s share the question), keeps it in sessionStorage
 * (this tab only, gone when it closes) and sends it as `Authorization: Bearer` on
 * fetches, and as ?access_token= where no header can go (EventSource, <img>, links):
 * use withToken(url) for those.
 */
const TOKEN_KEY = 'gand-token';
let asking = null;
let declined = false;

export function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function withToken(url) {
  const t = token();
  return t ? `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(t)}` : url;
}

export function authHeaders(headers = {}) {
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  return headers;
}

/* After a 401: resolves true when there is a (new) token to retry with. */
function askToken() {
  if (declined) return Promise.resolve(false);
  if (!asking) {
    asking = new Promise((resolve) => setTimeout(() => {
      const again = token() !== '';
      const t = window.prompt(again
        ? 'gand refused the API token. Enter it again (the contents of the daemon\'s token_file):'
        : 'This gand needs an API token (the contents of the daemon\'s token_file):', '');
      asking = null;
      if (t === null || !t.trim()) {
        declined = true; /* not asked again until the page is reloaded */
        resolve(false);
        return;
      }
      try { sessionStorage.setItem(TOKEN_KEY, t.trim()); } catch { /* storage disabled */ }
      resolve(true);
    }, 0));
  }
  return asking;
}

/* fetch with the token; on 401 ask for it once and try again. */
async function fetchAuthed(path, init) {
  const res = await fetch(path, { ...init, headers: authHeaders({ ...(init.headers || {}) }) });
  if (res.status !== 401 || !(await askToken())) return res;
  return fetch(path, { ...init, headers: authHeaders({ ...(init.headers || {}) }) });
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
    res = await fetchAuthed(path, init);
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
    res = await fetchAuthed(path, { cache: 'no-store', signal });
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
