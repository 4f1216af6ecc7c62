// demo_connect.mjs — the demo's stand-in for a person's browser completing
// a connection: open brigade's connect_url (which binds the flow to this
// browser with a cookie), sign in at the demo identity provider as ACCOUNT
// and allow access, then follow the provider's redirect back to brigade's
// /oauth/callback and print what its page says.
//
//   node scripts/demo_connect.mjs CONNECT_URL ACCOUNT
//
// A person does the same by opening CONNECT_URL in a browser.
import { browserAuthorize } from '../tests/e2e/lib/oauth_server.mjs';

const [connectUrl, account] = process.argv.slice(2);
if (!connectUrl || !account) {
  console.error('usage: node scripts/demo_connect.mjs CONNECT_URL ACCOUNT');
  process.exit(2);
}
const start = await fetch(connectUrl, { redirect: 'manual' });
const location = start.headers.get('location');
if (start.status !== 302 || !location) {
  console.error(`connect link refused: ${start.status} ${(await start.text()).replace(/<[^>]*>/g, ' ').trim()}`);
  process.exit(1);
}
const cookie = (start.headers.get('set-cookie') || '').split(';')[0];
const callback = await browserAuthorize(new URL(location).origin, location, account);
const page = await fetch(callback, { headers: { cookie } });
const entities = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
const text = (await page.text()).replace(/<(style|script|title)[^>]*>[\s\S]*?<\/\1>/g, '')
  .replace(/<[^>]*>/g, ' ').replace(/&(amp|lt|gt|quot|#39);/g, (_, e) => entities[e])
  .replace(/\s+/g, ' ').trim();
console.log(text);
process.exit(page.ok ? 0 : 1);
