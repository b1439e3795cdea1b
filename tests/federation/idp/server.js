// A real OpenID provider (the certified `oidc-provider` package) for the federation tests.
//
// Configured from the environment by the pytest fixture (tests/federation/conftest.py):
//   IDP_PORT          loopback port to listen on
//   IDP_CLIENT_ID     the console's client id; IDP_CLIENT_SECRET its secret
//   IDP_REDIRECT_URIS comma-separated callback URLs of the console
//   IDP_CONFORM       1: claims at userinfo only, not in the ID token
//   IDP_ACCOUNTS      JSON {login: {claim: value}} overriding an account's claims
//                     (e.g. groups, email_verified, amr: what the login asserted)
// Any login is accepted on the provider's own (devInteractions) login page; the account's
// email is its login unless IDP_ACCOUNTS says otherwise, verified unless it says so.
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const overrides = JSON.parse(process.env.IDP_ACCOUNTS || '{}');

function claimsOf(login) {
  const { amr, ...claims } = overrides[login] || {};
  return { email: login, email_verified: true, name: login, groups: [], ...claims, amr };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.IDP_CLIENT_ID,
    client_secret: process.env.IDP_CLIENT_SECRET,
    redirect_uris: (process.env.IDP_REDIRECT_URIS || '').split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  pkce: { required: () => true },
  ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600 },
  // IDP_CONFORM=1: profile claims at the userinfo endpoint only (the spec's default for
  // the code flow); otherwise in the ID token too.
  conformIdTokenClaims: process.env.IDP_CONFORM === '1',
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        const { amr, ...claims } = claimsOf(sub);
        return { sub, ...claims };
      },
    };
  },
  async loadExistingGrant(ctx) {
    // Skip the consent page: the test client is first-party.
    const grant = new ctx.oidc.provider.Grant({
      accountId: ctx.oidc.session.accountId,
      clientId: ctx.oidc.client.clientId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
});

// What the test account's login asserted (e.g. amr ["pwd", "mfa"]) goes into its session,
// from which the provider writes the ID token's amr.
const { interactionFinished } = provider;
provider.interactionFinished = function finished(req, res, result, options) {
  const amr = result.login && claimsOf(result.login.accountId).amr;
  if (amr) result.login.amr = amr;
  return interactionFinished.call(this, req, res, result, options);
};

provider.listen(port, '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
