// A local OpenID Connect provider on 127.0.0.1 for the console's sign-in tests (Node's
// `http` and `crypto` only). Authorization code flow with PKCE (S256); the ID token is an
// ES256 JWT. The authorization endpoint signs in `provider.user` at once (no login page).
//
// `provider.misbehave(kind)` makes the next ID tokens wrong on purpose, so the host's
// refusals can be tested: 'wrong-nonce', 'wrong-audience', 'wrong-issuer', 'expired',
// 'bad-signature', 'token-error' (the token endpoint answers 400), 'access-denied' (the
// authorization endpoint redirects back with `error=access_denied`); `null` behaves.
//
// Every request is recorded: `provider.authorizations` (the authorization requests'
// parameters) and `provider.tokenRequests` (the token requests' parameters plus
// `verifierMatches` and the `error` answered, if any).

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';

export const MISBEHAVIOURS = [
  'wrong-nonce', 'wrong-audience', 'wrong-issuer', 'expired', 'bad-signature',
  'token-error', 'access-denied',
];

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const random = () => randomBytes(24).toString('base64url');

/** The S256 code challenge of a PKCE verifier. */
export function s256(verifier) {
  return b64url(createHash('sha256').update(verifier, 'ascii').digest());
}

/** An ES256 JWT signed with `privateKey`. */
export function signJwt(header, claims, privateKey) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

/**
 * Starts the provider.
 * @param {object} [o]
 * @param {string} [o.clientId] the client the host is configured with (default `console`)
 * @param {string} [o.clientSecret] when set, the token request must carry it (client_secret_post)
 * @param {{sub: string, tenant_id: string, roles: string[]}} [o.user] who signs in
 */
export async function startProvider({
  clientId = 'console',
  clientSecret,
  user = { sub: 'dana@acme', tenant_id: 'acme', roles: ['developer'] },
} = {}) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { privateKey: otherKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `test-${random().slice(0, 8)}`;
  const codes = new Map(); // code -> the authorization it answers
  const provider = {
    issuer: '',
    clientId,
    user,
    misbehaviour: null,
    authorizations: [],
    tokenRequests: [],
    misbehave(kind) {
      if (kind !== null && !MISBEHAVIOURS.includes(kind)) throw new Error(`unknown misbehaviour ${kind}`);
      this.misbehaviour = kind;
    },
    reset() {
      this.misbehaviour = null;
      this.authorizations.length = 0;
      this.tokenRequests.length = 0;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };

  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };

  function idToken(auth) {
    const now = Math.floor(Date.now() / 1000);
    const bad = provider.misbehaviour;
    const claims = {
      iss: bad === 'wrong-issuer' ? `${provider.issuer}/other` : provider.issuer,
      aud: bad === 'wrong-audience' ? 'someone-else' : clientId,
      sub: auth.user.sub,
      tenant_id: auth.user.tenant_id,
      roles: auth.user.roles,
      iat: bad === 'expired' ? now - 7200 : now,
      exp: bad === 'expired' ? now - 3600 : now + 600,
    };
    if (auth.nonce !== undefined) claims.nonce = bad === 'wrong-nonce' ? random() : auth.nonce;
    const key = bad === 'bad-signature' ? otherKey : privateKey;
    return signJwt({ alg: 'ES256', typ: 'JWT', kid }, claims, key);
  }

  function authorize(url, res) {
    const p = Object.fromEntries(url.searchParams);
    provider.authorizations.push(p);
    const problem =
      p.response_type !== 'code' ? 'response_type must be code'
        : p.client_id !== clientId ? `unknown client_id ${p.client_id}`
          : !p.redirect_uri ? 'redirect_uri missing'
            : !p.code_challenge ? 'code_challenge missing'
              : p.code_challenge_method !== 'S256' ? 'code_challenge_method must be S256'
                : !(p.scope ?? '').split(' ').includes('openid') ? 'scope must include openid'
                  : null;
    if (problem) return answer(res, 400, { error: 'invalid_request', error_description: problem });
    const back = new URL(p.redirect_uri);
    if (p.state !== undefined) back.searchParams.set('state', p.state);
    if (provider.misbehaviour === 'access-denied') {
      back.searchParams.set('error', 'access_denied');
    } else {
      const code = random();
      codes.set(code, { ...p, user: { ...provider.user } });
      back.searchParams.set('code', code);
    }
    res.writeHead(302, { location: back.href, 'cache-control': 'no-store' }).end();
  }

  function token(body, res) {
    const p = Object.fromEntries(new URLSearchParams(body));
    const record = { ...p, verifierMatches: false, error: null };
    provider.tokenRequests.push(record);
    const auth = codes.get(p.code);
    codes.delete(p.code); // single use
    if (auth && p.code_verifier) record.verifierMatches = s256(p.code_verifier) === auth.code_challenge;
    const problem =
      p.grant_type !== 'authorization_code' ? ['unsupported_grant_type', 'grant_type must be authorization_code']
        : !auth ? ['invalid_grant', 'unknown or used code']
          : p.client_id !== clientId ? ['invalid_client', 'wrong client_id']
            : clientSecret !== undefined && p.client_secret !== clientSecret ? ['invalid_client', 'wrong client_secret']
              : p.redirect_uri !== auth.redirect_uri ? ['invalid_grant', 'redirect_uri differs from the authorization request']
                : !record.verifierMatches ? ['invalid_grant', 'code_verifier does not match the code_challenge']
                  : provider.misbehaviour === 'token-error' ? ['invalid_grant', 'refused on purpose']
                    : null;
    if (problem) {
      record.error = problem[0];
      return answer(res, 400, { error: problem[0], error_description: problem[1] });
    }
    answer(res, 200, {
      id_token: idToken(auth),
      access_token: random(),
      token_type: 'Bearer',
      expires_in: 600,
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url, provider.issuer);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case 'GET /.well-known/openid-configuration':
          return answer(res, 200, {
            issuer: provider.issuer,
            authorization_endpoint: `${provider.issuer}/authorize`,
            token_endpoint: `${provider.issuer}/token`,
            jwks_uri: `${provider.issuer}/jwks`,
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['ES256'],
            code_challenge_methods_supported: ['S256'],
            token_endpoint_auth_methods_supported: ['none', 'client_secret_post'],
            scopes_supported: ['openid', 'profile'],
          });
        case 'GET /jwks':
          return answer(res, 200, { keys: [jwk] });
        case 'GET /authorize':
          return authorize(url, res);
        case 'POST /token':
          return token(body, res);
        default:
          return answer(res, 404, { error: 'not_found' });
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  provider.issuer = `http://127.0.0.1:${server.address().port}`;
  return provider;
}

function answer(res, status, json) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(json));
}
