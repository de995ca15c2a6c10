// The whole consentgate FAPI 2.0 flow driven by an independent client
// library, openid-client (https://github.com/panva/openid-client): PAR with
// PKCE, private_key_jwt and DPoP, the customer's consent, the code
// exchange, a DPoP-bound data call, introspection, refresh and revocation.
//
// Run by internal/server/interop_test.go, which starts a server, registers
// a private_key_jwt + DPoP client and passes:
//   CONSENTGATE_ISSUER        issuer URL of the running server
//   CONSENTGATE_CLIENT_ID     the registered client_id
//   CONSENTGATE_CLIENT_JWK    the client's private key as a JWK (with kid)
//   CONSENTGATE_REDIRECT_URI  a registered redirect URI
// The browser part (login as alice, approve) is plain fetch with manual
// redirects and a cookie jar; the form fields are those of the web pages.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as oidc from 'openid-client'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set; run this through internal/server/interop_test.go`)
  return v
}

const issuer = env('CONSENTGATE_ISSUER')
const clientId = env('CONSENTGATE_CLIENT_ID')
const redirectUri = env('CONSENTGATE_REDIRECT_URI')
const purpose = 'personal_finance_management'

// A minimal browser: cookies by name, no automatic redirects.
class Browser {
  cookies = new Map()

  async request (url, init = {}) {
    const headers = new Headers(init.headers)
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    }
    const res = await fetch(new URL(url, issuer), { ...init, headers, redirect: 'manual' })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const i = pair.indexOf('=')
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim())
    }
    return res
  }

  post (url, fields) {
    const body = new URLSearchParams()
    for (const [k, v] of fields) body.append(k, v)
    return this.request(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  }
}

const entities = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }
const unescape = (s) => s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e) =>
  e[0] === '#' ? String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)) : (entities[e] ?? m))

// inputs returns the [name, value] pairs of a page's inputs of a type.
const inputs = (html, type) => [...html.matchAll(/<input\b[^>]*>/g)]
  .map(([tag]) => Object.fromEntries([...tag.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, unescape(v)])))
  .filter((a) => a.type === type)
  .map((a) => [a.name, a.value])

// consent walks the customer's browser from the authorization URL through
// login and the consent screen and returns the redirect back to the app.
async function consent (authorizationUrl) {
  const b = new Browser()
  let res = await b.request(authorizationUrl)
  for (let hops = 0; res.status === 303 || res.status === 302; hops++) {
    assert.ok(hops < 10, 'too many redirects')
    const loc = new URL(res.headers.get('location'), issuer)
    if (loc.href.startsWith(redirectUri)) return loc
    if (loc.pathname === '/login') {
      const page = await (await b.request(loc)).text()
      res = await b.post('/login', [...inputs(page, 'hidden'), ['username', 'alice'], ['password', 'alice-password-1']])
      assert.equal(res.status, 303, 'login')
      continue
    }
    if (loc.pathname === '/consent') {
      res = await b.request(loc)
      if (res.status !== 200) continue
      const page = await res.text()
      const accounts = inputs(page, 'checkbox').filter(([n]) => n === 'account')
      assert.ok(accounts.length > 0, 'the consent screen offers accounts')
      res = await b.post('/consent', [...inputs(page, 'hidden'), ...accounts, ['decision', 'approve']])
      continue
    }
    res = await b.request(loc)
  }
  throw new Error(`the consent flow ended with ${res.status} at ${res.url}: ${await res.text()}`)
}

test('FAPI 2.0 flow with openid-client: private_key_jwt + DPoP', async () => {
  const jwk = JSON.parse(env('CONSENTGATE_CLIENT_JWK'))
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  const config = await oidc.discovery(new URL(issuer), clientId, {}, oidc.PrivateKeyJwt({ key, kid: jwk.kid }), {
    algorithm: 'oauth2',
    // The test server runs on loopback http (allowed by the server for development only).
    execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : []
  })
  const meta = config.serverMetadata()
  assert.equal(meta.issuer, issuer)
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'))
  assert.ok(meta.dpop_signing_alg_values_supported.includes('ES256'))

  // The DPoP key is the app's own, made here: the server never sees it registered.
  const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'))
  const codeVerifier = oidc.randomPKCECodeVerifier()
  const state = oidc.randomState()
  const authorizationUrl = await oidc.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: redirectUri,
    scope: 'accounts:read balances:read transactions:read offline_access',
    state,
    purpose,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256'
  }, { DPoP })

  const callback = await consent(authorizationUrl)
  assert.equal(callback.searchParams.get('iss'), issuer)
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state }, undefined, { DPoP })
  assert.equal(tokens.token_type.toLowerCase(), 'dpop')
  assert.ok(tokens.grant_id, 'the code exchange returns the grant_id')
  assert.ok(tokens.refresh_token)

  const accountsUrl = new URL('/v1/accounts', issuer)
  const purposeHeader = new Headers({ 'data-purpose': purpose })
  let res = await oidc.fetchProtectedResource(config, tokens.access_token, accountsUrl, 'GET', undefined, purposeHeader, { DPoP })
  assert.equal(res.status, 200)
  const { data } = await res.json()
  assert.ok(data.length > 0, 'alice consented to her accounts')

  // A stolen token is useless without the DPoP key.
  res = await fetch(accountsUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } })
  assert.equal(res.status, 401)
  assert.match(res.headers.get('www-authenticate'), /^DPoP error="invalid_token"/)
  const thief = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'))
  await assert.rejects(
    oidc.fetchProtectedResource(config, tokens.access_token, accountsUrl, 'GET', undefined, undefined, { DPoP: thief }),
    (err) => err instanceof oidc.WWWAuthenticateChallengeError && err.cause?.[0]?.parameters?.error === 'invalid_dpop_proof')

  const introspection = await oidc.tokenIntrospection(config, tokens.access_token)
  assert.equal(introspection.active, true)
  assert.equal(introspection.token_type, 'DPoP')
  assert.ok(introspection.cnf?.jkt, 'introspection names the bound key (cnf.jkt)')

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP })
  assert.equal(refreshed.token_type.toLowerCase(), 'dpop')
  res = await oidc.fetchProtectedResource(config, refreshed.access_token, new URL(`/v1/accounts/${data[0].account_id}/balances`, issuer), 'GET', undefined, undefined, { DPoP })
  assert.equal(res.status, 200)

  // Revoking the refresh token ends the grant and its tokens.
  await oidc.tokenRevocation(config, refreshed.refresh_token)
  await assert.rejects(
    oidc.fetchProtectedResource(config, refreshed.access_token, accountsUrl, 'GET', undefined, undefined, { DPoP }),
    (err) => err instanceof oidc.WWWAuthenticateChallengeError && err.cause?.[0]?.parameters?.error === 'invalid_token')
})
