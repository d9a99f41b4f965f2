// Drives the Stripe.js stand-in in jsdom against a running stripe_sim.
// usage: node stripe_js_flow.cjs <sim_url> <pk> <secret_3ds> <secret_decline> <secret_card>
//        <secret_setup>  (a SetupIntent's, saved with confirmSetup and 3D Secure)
// Prints one JSON line with what a page would have seen.
'use strict';
const { JSDOM } = require('jsdom');

const [simUrl, pk, secret3ds, secretDecline, secretCard, secretSetup] = process.argv.slice(2);

function waitFor(check, what) {
  const deadline = Date.now() + 5000;
  return new Promise((resolve, reject) => {
    (function poll() {
      const value = check();
      if (value) { return resolve(value); }
      if (Date.now() > deadline) { return reject(new Error('timed out waiting for ' + what)); }
      setTimeout(poll, 10);
    })();
  });
}

function type(window, name, value) {
  const input = window.document.querySelector(`input[name="${name}"]`);
  input.value = value;
  input.dispatchEvent(new window.Event('input', { bubbles: true }));
  input.dispatchEvent(new window.Event('blur'));
}

async function payOnce(window, stripe, clientSecret, card, changes, confirm = 'confirmPayment') {
  const mount = window.document.createElement('div');
  window.document.body.appendChild(mount);
  const elements = stripe.elements({ clientSecret });
  const element = elements.create('payment');
  let ready = false;
  element.on('ready', () => { ready = true; });
  element.on('change', (e) => changes.push({ complete: e.complete, empty: e.empty, error: e.error && e.error.code }));
  element.mount(mount);
  await waitFor(() => ready, 'ready');
  type(window, 'cardnumber', card);
  type(window, 'exp-date', '12 / 34');
  type(window, 'cvc', '123');
  type(window, 'postal', '94103');
  const pending = stripe[confirm]({ elements, redirect: 'if_required' });
  const result = await Promise.race([
    pending,
    waitFor(() => window.document.querySelector('[role="dialog"]'), 'dialog').then((dialog) => {
      const complete = [...dialog.querySelectorAll('button')].find((b) => b.textContent === 'Complete');
      complete.click();
      return pending;
    }),
  ]);
  element.destroy();
  return result;
}

async function payWithCardElement(window, stripe, clientSecret) {
  const mount = window.document.createElement('div');
  window.document.body.appendChild(mount);
  const elements = stripe.elements();
  const card = elements.create('card', { hidePostalCode: true });
  card.mount(mount);
  const postalShown = !!mount.querySelector('input[name="postal"]');
  type(window, 'cardnumber', '5555555555554444');
  type(window, 'exp-date', '0440');
  type(window, 'cvc', '321');
  const result = await stripe.confirmCardPayment(clientSecret, {
    payment_method: { card: elements.getElement('card'), billing_details: { name: 'Ada' } },
  });
  card.destroy();
  return { postalShown, status: result.paymentIntent && result.paymentIntent.status, error: result.error };
}

(async () => {
  const html = `<!doctype html><html><head><script src="${simUrl}/v3/"></script></head><body></body></html>`;
  const jsdom = new JSDOM(html, {
    url: 'http://localhost:5173/',
    runScripts: 'dangerously',
    resources: 'usable',
    beforeParse(window) { window.fetch = fetch; },
  });
  const { window } = jsdom;
  await waitFor(() => window.Stripe, 'window.Stripe');
  // Load it the way the web client does: @stripe/stripe-js finds window.Stripe.
  global.window = window;
  global.document = window.document;
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(' '));
  const { loadStripe } = require('@stripe/stripe-js');
  const stripe = await loadStripe(pk);
  console.warn = warn;
  const shape = ['elements', 'createToken', 'createPaymentMethod', 'confirmCardPayment',
    'confirmPayment', 'handleNextAction', 'retrievePaymentIntent', '_registerWrapper',
    'confirmSetup', 'confirmCardSetup', 'retrieveSetupIntent']
    .filter((name) => typeof stripe[name] !== 'function');
  const changes = [];
  const threeDs = await payOnce(window, stripe, secret3ds, '4000 0027 6000 3184', changes);
  const declined = await payOnce(window, stripe, secretDecline, '4000000000000002', []);
  const cardElement = await payWithCardElement(window, stripe, secretCard);
  const setup = await payOnce(window, stripe, secretSetup, '4000 0025 0000 3155', [], 'confirmSetup');
  const labels = [...window.document.querySelectorAll('label')].length;
  process.stdout.write(JSON.stringify({
    missing: shape,
    changes,
    threeDs: threeDs.paymentIntent ? threeDs.paymentIntent.status : threeDs.error,
    declined: declined.error ? { type: declined.error.type, decline_code: declined.error.decline_code,
      pi: declined.error.payment_intent && declined.error.payment_intent.status } : declined,
    cardElement,
    setup: setup.setupIntent ? setup.setupIntent.status : setup.error,
    labelsLeft: labels,
    loadStripeWarnings: warnings,
  }) + '\n');
  window.close();
  process.exit(0);  // do not wait for idle keep-alive sockets
})().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
