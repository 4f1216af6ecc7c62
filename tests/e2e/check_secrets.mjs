// check_secrets.mjs — run after the whole e2e suite (scripts/test.sh): no
// credential the tests presented or were given (admin tokens, tenant admin
// keys, user keys, JWTs sent through the harness) appears in any log that
// brigade or mock-llm wrote during the suite; nor does any secret of the
// vault's tests (vault-secrets.txt: every access token, refresh token and
// authorization code the test authorization server issued, its client
// secret, the API keys users pasted). Prints one line; exit 1 on a
// leak, naming the log and a short prefix of the credential (never all of it).

import fs from 'node:fs';
import path from 'node:path';

const dir = process.env.BRIGADE_E2E_SECRETS_DIR;
if (!dir || !fs.existsSync(dir)) {
  console.log('check_secrets: BRIGADE_E2E_SECRETS_DIR is not set or missing');
  process.exit(1);
}
const secretsFile = path.join(dir, 'secrets.txt');
const secrets = fs.existsSync(secretsFile)
  ? [...new Set(fs.readFileSync(secretsFile, 'utf8').split('\n').filter((s) => s.length >= 16))]
  : [];
const vaultFile = path.join(dir, 'vault-secrets.txt');
const vaultSecrets = fs.existsSync(vaultFile)
  ? [...new Set(fs.readFileSync(vaultFile, 'utf8').split('\n').filter((s) => s.length >= 16))]
  : [];
secrets.push(...vaultSecrets);
const logs = fs.readdirSync(dir).filter((f) => f.startsWith('stderr-'));
let bytes = 0;
const leaks = [];
for (const f of logs) {
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  bytes += text.length;
  for (const s of secrets) if (text.includes(s)) leaks.push(`${f}: ${s.slice(0, 10)}…`);
}
if (secrets.length < 10 || logs.length < 4) {
  console.log(`check_secrets: too little to check (${secrets.length} credentials, ${logs.length} logs): the harness did not record them`);
  process.exit(1);
}
if (leaks.length) {
  console.log(`check_secrets: ${leaks.length} credential(s) found in logs:\n  ${leaks.slice(0, 20).join('\n  ')}`);
  process.exit(1);
}
console.log(`check_secrets: ok — ${secrets.length} credentials (${vaultSecrets.length} of them vault tokens), none in ${logs.length} logs (${bytes} bytes)`);
