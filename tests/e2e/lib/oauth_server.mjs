// oauth_server.mjs — a real OAuth 2 / OpenID Connect authorization server
// (the oidc-provider package) on a loopback port, for the vault's tests and
// the demo, plus a programmatic "browser" that logs a user in and consents.
//
//   const as = await startOAuthServer({ redirectUri, accessTtl: 60 });
//   as.issuer, as.clientId, as.clientSecret
//   const cb = await as.authorize(authUrl, 'alice');   // the redirect_uri URL with code and state
//   as.counts  — {authorization_code, refresh_token, revocation}: calls that reached the server
//   as.secrets — every token and code it issued (for the no-secret-in-logs checks)
//   as.mode = 'hang' | 'garbage' | 'huge' | 'error500' | 'normal'   (the token endpoint misbehaves)
//   as.codeTtl, as.accessTtl — seconds, changeable while running
//   await as.close()
//
// It is a public client with a secret (client_secret_basic), authorization
// code with PKCE required, refresh tokens on every grant and rotated on every
// use, and the RFC 7009 revocation endpoint.
//
// As a program (for the demo): node tests/e2e/lib/oauth_server.mjs --port N
// --redirect-uri URL prints "issuer URL"; the client's secret comes from
// the environment (OAUTH_CLIENT_SECRET), so it is not on a command line.
//
// Nothing here talks to anything but 127.0.0.1.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

/** A cookie jar of one origin, enough for the provider's interaction cookies. */
class Jar {
  constructor() { this.cookies = new Map(); }
  take(res) {
    for (const c of res.headers.getSetCookie?.() || []) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

export async function startOAuthServer({
  port = 0, redirectUri, clientId = 'brigade', clientSecret = randomBytes(24).toString('base64url'),
  accessTtl = 60, codeTtl = 60, extraRedirectUris = [],
} = {}) {
  const state = {
    mode: 'normal', accessTtl, codeTtl,
    counts: { authorization_code: 0, refresh_token: 0, revocation: 0, token_calls: 0 },
    secrets: new Set([clientSecret]),
  };
  const server = http.createServer();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri, ...extraRedirectUris],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    cookies: { keys: [randomBytes(16).toString('hex')] },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: () => state.accessTtl,
      AuthorizationCode: () => state.codeTtl,
      RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600, IdToken: 3600,
    },
  });
  provider.on('access_token.saved', (t) => state.secrets.add(t.jti));
  provider.on('refresh_token.saved', (t) => state.secrets.add(t.jti));
  provider.on('authorization_code.saved', (t) => state.secrets.add(t.jti));
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.method === 'POST') {
      const g = ctx.oidc?.params?.grant_type;
      if (g in state.counts) state.counts[g]++;
    }
    if (ctx.path === '/token/revocation' && ctx.method === 'POST') state.counts.revocation++;
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    try {
      const u = new URL(req.url, issuer);
      if (req.method === 'POST' && u.pathname === '/token') {
        state.counts.token_calls++;
        if (state.mode === 'hang') return;   // never answers (the client must give up)
        if (state.mode === 'garbage') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('<html>not json'); return; }
        if (state.mode === 'huge') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ access_token: 'x'.repeat(200_000), token_type: 'Bearer' }));
          return;
        }
        if (state.mode === 'error500') { res.writeHead(500); res.end('{"error":"server_error"}'); return; }
      }
      if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(u.pathname)) {
        // The login or consent page a person sees (the demo); a test's
        // browser answers it through the two routes below without reading it.
        const details = await provider.interactionDetails(req, res);
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(interactionPage(details.uid, details.prompt.name, details.params.client_id));
        return;
      }
      const m = u.pathname.match(/^\/interaction\/([^/]+)\/(login|confirm)$/);
      if (m) {
        const details = await provider.interactionDetails(req, res);
        if (m[2] === 'login') {
          await provider.interactionFinished(req, res, { login: { accountId: u.searchParams.get('account') } },
            { mergeWithLastSubmission: false });
          return;
        }
        const { prompt: { details: d }, params, session } = details;
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
        if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
        for (const [ind, scopes] of Object.entries(d.missingResourceScopes || {})) grant.addResourceScope(ind, scopes.join(' '));
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return;
      }
      callback(req, res);
    } catch (e) {
      if (!res.headersSent) { res.writeHead(500); res.end(String(e.message || e)); }
    }
  });

  return {
    issuer,
    clientId,
    clientSecret,
    get counts() { return state.counts; },
    get secrets() { return [...state.secrets]; },
    get mode() { return state.mode; },
    set mode(m) { state.mode = m; },
    set accessTtl(s) { state.accessTtl = s; },
    set codeTtl(s) { state.codeTtl = s; },
    /** Drive the provider's pages as `account`'s browser, from the
     *  authorization URL to the redirect back to the client: returns that
     *  URL (not fetched). Throws if the server stops anywhere else. */
    authorize: (authUrl, account) => browserAuthorize(issuer, authUrl, account),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

const escapeHtml = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page of one interaction: a login form (any account name: this is a
 *  test and demo server, it has no passwords) or the consent question. Both
 *  forms are GETs of the routes the programmatic browser uses. */
function interactionPage(uid, prompt, clientId) {
  const id = encodeURIComponent(uid);
  const body = prompt === 'login'
    ? `<h1>Sign in</h1><form method="get" action="/interaction/${id}/login">
<label>Account <input name="account" autofocus required pattern="[A-Za-z0-9._-]{1,64}"></label>
<button>Sign in</button></form><p>Demo identity provider: any account name signs in.</p>`
    : `<h1>Allow access?</h1><p><b>${escapeHtml(clientId)}</b> asks to act with your account.</p>
<form method="get" action="/interaction/${id}/confirm"><button>Allow</button></form>`;
  return `<!doctype html><meta charset="utf-8"><title>Demo identity provider</title>${body}\n`;
}

/** A browser of one person at the provider: follows the authorization URL,
 *  signs in as `account`, consents, and returns the URL the provider
 *  redirects back to (not fetched) — the first URL outside `issuer`. */
export async function browserAuthorize(issuer, authUrl, account) {
  const jar = new Jar();
  let url = authUrl;
  for (let hop = 0; hop < 12; hop++) {
    if (!url.startsWith(issuer)) return url;
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(res);
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      url = new URL(loc, url).toString();
      continue;
    }
    const page = new URL(url);
    const im = page.pathname.match(/^\/interaction\/([^/]+)$/);
    if (im && res.status === 200) {
      // the login page, then the consent page: answered as a person would
      const next = jar.loggedIn ? 'confirm' : 'login';
      jar.loggedIn = true;
      url = `${issuer}/interaction/${im[1]}/${next}?account=${encodeURIComponent(account)}`;
      continue;
    }
    throw new Error(`authorize: stopped at ${url}: ${res.status} ${(await res.text()).slice(0, 300)}`);
  }
  throw new Error('authorize: too many redirects');
}

// As a program: the demo's authorization server.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const as = await startOAuthServer({
    port: Number(arg('--port', '0')),
    redirectUri: arg('--redirect-uri', 'http://127.0.0.1:8080/oauth/callback'),
    clientSecret: process.env.OAUTH_CLIENT_SECRET || undefined,
  });
  console.log(`issuer ${as.issuer}`);
  console.log(`client_id ${as.clientId}`);
}
