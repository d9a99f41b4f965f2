/*
 * stripe_sim — a Stripe.js (v3) stand-in for local development and tests.
 *
 * Load it instead of https://js.stripe.com/v3/ :
 *   <script src="http://127.0.0.1:12111/v3/"></script>
 * It defines window.Stripe(publishableKey, options), talks to the stripe_sim
 * server it was loaded from, and renders plain inputs (named cardnumber,
 * exp-date, cvc, postal) instead of Stripe's iframes, so browser tests can
 * type test cards. 3D Secure shows a modal dialog with Complete / Fail.
 * Works with @stripe/stripe-js loadStripe() and @stripe/react-stripe-js.
 */
(function () {
  'use strict';

  if (window.Stripe && window.Stripe.__stripeSim) {
    return;
  }

  var script = document.currentScript;
  var ORIGIN = script && script.src
    ? new URL(script.src, window.location.href).origin
    : window.location.origin;
  var STYLE_ID = 'stripe-sim-style';
  var CSS = [
    '.stripe-sim-element{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1f36;',
    'border:1px solid #e3e8ee;border-radius:8px;padding:12px;background:#fff}',
    '.stripe-sim-badge{display:inline-block;font-size:10px;font-weight:700;letter-spacing:.06em;',
    'background:#ffde92;color:#7a4d00;border-radius:4px;padding:1px 6px;margin-bottom:8px}',
    '.stripe-sim-field{display:block;margin:0 0 8px}',
    '.stripe-sim-field span{display:block;font-size:12px;color:#4f566b;margin-bottom:3px}',
    '.stripe-sim-field input{box-sizing:border-box;width:100%;font:inherit;padding:8px 10px;',
    'border:1px solid #cfd7df;border-radius:6px;outline:none}',
    '.stripe-sim-field input:focus{border-color:#635bff;box-shadow:0 0 0 3px rgba(99,91,255,.2)}',
    '.stripe-sim-row{display:flex;gap:8px}.stripe-sim-row .stripe-sim-field{flex:1}',
    '.stripe-sim-error{color:#df1b41;font-size:12px;min-height:16px}',
    '.stripe-sim-overlay{position:fixed;inset:0;background:rgba(10,20,40,.45);display:flex;',
    'align-items:center;justify-content:center;z-index:2147483647}',
    '.stripe-sim-dialog{background:#fff;border-radius:10px;padding:24px 28px;max-width:380px;',
    'font:14px/1.5 system-ui,sans-serif;color:#1a1f36;box-shadow:0 10px 40px rgba(0,0,0,.25)}',
    '.stripe-sim-dialog h2{font-size:18px;margin:0 0 8px}',
    '.stripe-sim-dialog button{font:inherit;padding:8px 16px;border-radius:6px;border:0;',
    'cursor:pointer;margin:8px 8px 0 0}',
    '.stripe-sim-complete{background:#635bff;color:#fff}.stripe-sim-fail{background:#e3e8ee}'
  ].join('');

  function injectStyle() {
    if (document.getElementById(STYLE_ID)) {
      return;
    }
    var style = document.createElement('style');
    style.id = STYLE_ID;
    style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);
  }

  function integrationError(message) {
    var error = new Error(message);
    error.name = 'IntegrationError';
    return error;
  }

  // ---- HTTP -------------------------------------------------------------

  function encode(params) {
    var parts = [];
    function add(prefix, value) {
      if (value === undefined || value === null) {
        return;
      }
      if (Array.isArray(value)) {
        value.forEach(function (item, i) { add(prefix + '[' + i + ']', item); });
      } else if (typeof value === 'object') {
        Object.keys(value).forEach(function (k) {
          add(prefix ? prefix + '[' + k + ']' : k, value[k]);
        });
      } else {
        parts.push(encodeURIComponent(prefix) + '=' + encodeURIComponent(String(value)));
      }
    }
    add('', params || {});
    return parts.join('&');
  }

  function connectionError(err) {
    return {
      status: 0,
      body: {error: {type: 'api_connection_error',
        message: 'Could not reach stripe_sim at ' + ORIGIN + ': ' + (err && err.message)}}
    };
  }

  function api(key, method, path, params) {
    var url = ORIGIN + path;
    var body = encode(params);
    var init = {method: method, headers: {Authorization: 'Bearer ' + key}};
    if (method === 'GET') {
      if (body) {
        url += '?' + body;
      }
    } else {
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = body;
    }
    return fetch(url, init).then(function (res) {
      return res.json().then(function (json) { return {status: res.status, body: json}; });
    }, connectionError);
  }

  function intentId(clientSecret) {
    return String(clientSecret || '').split('_secret_')[0];
  }

  // ---- card fields ----------------------------------------------------

  function digitsOf(value) {
    return String(value || '').replace(/\D/g, '');
  }

  function luhnValid(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = parseInt(digits.charAt(digits.length - 1 - i), 10);
      if (i % 2 === 1) {
        d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function brandOf(digits) {
    if (/^4/.test(digits)) { return 'visa'; }
    if (/^(5[1-5]|2[2-7])/.test(digits)) { return 'mastercard'; }
    if (/^3[47]/.test(digits)) { return 'amex'; }
    if (/^(6011|65|64[4-9])/.test(digits)) { return 'discover'; }
    if (/^3[0689]/.test(digits)) { return 'diners'; }
    if (/^35/.test(digits)) { return 'jcb'; }
    if (/^62/.test(digits)) { return 'unionpay'; }
    return 'unknown';
  }

  function parseExpiry(value) {
    var digits = digitsOf(value);
    if (digits.length !== 4 && digits.length !== 6) {
      return null;
    }
    var month = parseInt(digits.slice(0, 2), 10);
    var year = parseInt(digits.slice(2), 10);
    if (digits.length === 4) {
      year += 2000;
    }
    return {month: month, year: year};
  }

  function formatNumber(value) {
    return digitsOf(value).slice(0, 19).replace(/(\d{4})(?=\d)/g, '$1 ');
  }

  function formatExpiry(value) {
    var digits = digitsOf(value).slice(0, 4);
    return digits.length > 2 ? digits.slice(0, 2) + ' / ' + digits.slice(2) : digits;
  }

  var MESSAGES = {
    incomplete_number: 'Your card number is incomplete.',
    invalid_number: 'Your card number is invalid.',
    incomplete_expiry: "Your card's expiration date is incomplete.",
    invalid_expiry_month: "Your card's expiration date is invalid.",
    invalid_expiry_year_past: "Your card's expiration year is in the past.",
    incomplete_cvc: "Your card's security code is incomplete.",
    incomplete_zip: 'Your postal code is incomplete.'
  };

  function fieldError(code) {
    return {type: 'validation_error', code: code, message: MESSAGES[code]};
  }

  // Check what was typed; `needs` lists the fields that must be present.
  function checkFields(values, needs) {
    var number = digitsOf(values.number);
    var empty = !number && !values.expiry && !values.cvc && !values.postal;
    var error = null;
    if (needs.number) {
      if (number.length < 13) {
        error = error || fieldError('incomplete_number');
      } else if (!luhnValid(number)) {
        error = error || fieldError('invalid_number');
      }
    }
    if (needs.expiry) {
      var exp = parseExpiry(values.expiry);
      var now = new Date();
      if (!exp) {
        error = error || fieldError('incomplete_expiry');
      } else if (exp.month < 1 || exp.month > 12) {
        error = error || fieldError('invalid_expiry_month');
      } else if (exp.year < now.getFullYear() ||
          (exp.year === now.getFullYear() && exp.month < now.getMonth() + 1)) {
        error = error || fieldError('invalid_expiry_year_past');
      }
    }
    if (needs.cvc) {
      var cvc = digitsOf(values.cvc);
      if (cvc.length < (brandOf(number) === 'amex' ? 4 : 3)) {
        error = error || fieldError('incomplete_cvc');
      }
    }
    if (needs.postal && !String(values.postal || '').trim()) {
      error = error || fieldError('incomplete_zip');
    }
    return {empty: empty, complete: !error, error: error, brand: brandOf(number)};
  }

  // ---- Elements -------------------------------------------------------

  var FIELD_SETS = {
    payment: ['number', 'expiry', 'cvc', 'postal'],
    card: ['number', 'expiry', 'cvc', 'postal'],
    cardNumber: ['number'],
    cardExpiry: ['expiry'],
    cardCvc: ['cvc']
  };
  var FIELD_INPUTS = {
    number: {name: 'cardnumber', label: 'Card number', placeholder: '1234 1234 1234 1234',
      autocomplete: 'cc-number', inputmode: 'numeric'},
    expiry: {name: 'exp-date', label: 'Expiration date', placeholder: 'MM / YY',
      autocomplete: 'cc-exp', inputmode: 'numeric'},
    cvc: {name: 'cvc', label: 'Security code', placeholder: 'CVC', autocomplete: 'cc-csc',
      inputmode: 'numeric'},
    postal: {name: 'postal', label: 'Postal code', placeholder: '12345',
      autocomplete: 'postal-code', inputmode: 'text'}
  };

  function StripeSimElement(group, type, options) {
    this._group = group;
    this._type = type;
    this._options = options || {};
    this._handlers = {};
    this._root = null;
    this._inputs = {};
    this._touched = false;
    this._destroyed = false;
  }

  StripeSimElement.prototype._fields = function () {
    var fields = (FIELD_SETS[this._type] || []).slice();
    if (this._type === 'card' && this._options.hidePostalCode) {
      fields = fields.filter(function (f) { return f !== 'postal'; });
    }
    return fields;
  };

  StripeSimElement.prototype._emit = function (event, payload) {
    var handlers = (this._handlers[event] || []).slice();
    for (var i = 0; i < handlers.length; i++) {
      try {
        handlers[i](payload);
      } catch (err) {
        setTimeout(function () { throw err; });
      }
    }
  };

  StripeSimElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };
  StripeSimElement.prototype.addEventListener = StripeSimElement.prototype.on;

  StripeSimElement.prototype.off = function (event, handler) {
    if (!handler) {
      delete this._handlers[event];
    } else if (this._handlers[event]) {
      this._handlers[event] = this._handlers[event].filter(function (h) {
        return h !== handler && h.__original !== handler;
      });
    }
    return this;
  };
  StripeSimElement.prototype.removeEventListener = StripeSimElement.prototype.off;

  StripeSimElement.prototype.once = function (event, handler) {
    var self = this;
    var wrapped = function (payload) {
      self.off(event, wrapped);
      handler(payload);
    };
    wrapped.__original = handler;
    return this.on(event, wrapped);
  };

  StripeSimElement.prototype._values = function () {
    var values = {};
    var inputs = this._inputs;
    Object.keys(inputs).forEach(function (field) { values[field] = inputs[field].value; });
    return values;
  };

  StripeSimElement.prototype._state = function () {
    var needs = {};
    this._fields().forEach(function (f) { needs[f] = true; });
    return checkFields(this._values(), needs);
  };

  StripeSimElement.prototype._changed = function () {
    var state = this._state();
    if (this._errorNode) {
      this._errorNode.textContent = state.error && this._touched ? state.error.message : '';
    }
    var payload = {
      elementType: this._type,
      empty: state.empty,
      complete: state.complete,
      error: state.error || undefined
    };
    if (this._type === 'payment') {
      payload.value = {type: 'card'};
    } else {
      payload.brand = state.brand;
    }
    this._emit('change', payload);
  };

  StripeSimElement.prototype.mount = function (target) {
    if (this._destroyed) {
      throw integrationError('This Element has already been destroyed.');
    }
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node) {
      throw integrationError('stripe_sim: the mount target ' + target + ' was not found.');
    }
    injectStyle();
    var self = this;
    var root = document.createElement('div');
    root.className = 'StripeElement stripe-sim-element';
    root.setAttribute('data-stripe-sim-element', this._type);
    var badge = document.createElement('div');
    badge.className = 'stripe-sim-badge';
    badge.textContent = 'TEST MODE · stripe_sim';
    root.appendChild(badge);
    var row = null;
    this._inputs = {};
    this._fields().forEach(function (field) {
      var spec = FIELD_INPUTS[field];
      var label = document.createElement('label');
      label.className = 'stripe-sim-field';
      var caption = document.createElement('span');
      caption.textContent = spec.label;
      var input = document.createElement('input');
      input.name = spec.name;
      input.type = 'text';
      input.placeholder = spec.placeholder;
      input.setAttribute('autocomplete', spec.autocomplete);
      input.setAttribute('inputmode', spec.inputmode);
      input.setAttribute('aria-label', spec.label);
      input.addEventListener('input', function () {
        if (field === 'number') { input.value = formatNumber(input.value); }
        if (field === 'expiry') { input.value = formatExpiry(input.value); }
        if (field === 'cvc') { input.value = digitsOf(input.value).slice(0, 4); }
        self._changed();
      });
      input.addEventListener('focus', function () {
        self._emit('focus', {elementType: self._type});
      });
      input.addEventListener('blur', function () {
        self._touched = true;
        self._changed();
        self._emit('blur', {elementType: self._type});
      });
      input.addEventListener('keydown', function (e) {
        if (e.key === 'Escape') { self._emit('escape', {elementType: self._type}); }
      });
      label.appendChild(caption);
      label.appendChild(input);
      self._inputs[field] = input;
      if (field === 'expiry' || field === 'cvc') {
        if (!row) {
          row = document.createElement('div');
          row.className = 'stripe-sim-row';
          root.appendChild(row);
        }
        row.appendChild(label);
      } else {
        root.appendChild(label);
      }
    });
    if (!FIELD_SETS[this._type]) {
      var note = document.createElement('div');
      note.textContent = 'stripe_sim does not render a "' + this._type + '" Element.';
      root.appendChild(note);
    }
    this._errorNode = document.createElement('div');
    this._errorNode.className = 'stripe-sim-error';
    this._errorNode.setAttribute('role', 'alert');
    root.appendChild(this._errorNode);
    node.appendChild(root);
    this._root = root;
    setTimeout(function () {
      self._emit('loaderstart', {elementType: self._type});
      self._emit('ready', {elementType: self._type});
    }, 0);
  };

  StripeSimElement.prototype.unmount = function () {
    if (this._root && this._root.parentNode) {
      this._root.parentNode.removeChild(this._root);
    }
    this._root = null;
  };

  StripeSimElement.prototype.destroy = function () {
    this.unmount();
    this._destroyed = true;
    this._inputs = {};
    if (this._group._elements[this._type] === this) {
      delete this._group._elements[this._type];
    }
  };

  StripeSimElement.prototype.update = function (options) {
    var hidePostal = this._options.hidePostalCode;
    this._options = Object.assign({}, this._options, options || {});
    if (this._root && hidePostal !== this._options.hidePostalCode) {
      var parent = this._root.parentNode;
      var values = this._values();
      this.unmount();
      this.mount(parent);
      var inputs = this._inputs;
      Object.keys(values).forEach(function (f) { if (inputs[f]) { inputs[f].value = values[f]; } });
    }
  };

  StripeSimElement.prototype.focus = function () {
    var first = this._inputs[this._fields()[0]];
    if (first) { first.focus(); }
  };

  StripeSimElement.prototype.blur = function () {
    var active = document.activeElement;
    if (active && this._root && this._root.contains(active)) { active.blur(); }
  };

  StripeSimElement.prototype.clear = function () {
    var inputs = this._inputs;
    Object.keys(inputs).forEach(function (f) { inputs[f].value = ''; });
    this._touched = false;
    this._changed();
  };

  StripeSimElement.prototype.collapse = function () {};

  function StripeSimElements(stripe, options) {
    this._stripe = stripe;
    this._options = Object.assign({}, options || {});
    this._elements = {};
  }

  StripeSimElements.prototype.create = function (type, options) {
    if (this._elements[type]) {
      throw integrationError('Can only create one Element of type ' + type + '.');
    }
    var element = new StripeSimElement(this, type, options);
    this._elements[type] = element;
    return element;
  };

  StripeSimElements.prototype.getElement = function (type) {
    var name = typeof type === 'string' ? type : type && type.__elementType;
    return this._elements[name] || null;
  };

  StripeSimElements.prototype.update = function (options) {
    this._options = Object.assign({}, this._options, options || {});
  };

  StripeSimElements.prototype.fetchUpdates = function () {
    return Promise.resolve({});
  };

  // Values typed across this group's card Elements (split fields included).
  StripeSimElements.prototype._cardValues = function () {
    var values = {};
    var needs = {};
    var self = this;
    Object.keys(this._elements).forEach(function (type) {
      var element = self._elements[type];
      element._fields().forEach(function (f) {
        needs[f] = true;
        if (element._inputs[f]) { values[f] = element._inputs[f].value; }
      });
    });
    return {values: values, needs: needs};
  };

  StripeSimElements.prototype._markTouched = function () {
    var self = this;
    Object.keys(this._elements).forEach(function (type) {
      self._elements[type]._touched = true;
      self._elements[type]._changed();
    });
  };

  StripeSimElements.prototype.submit = function () {
    var card = this._cardValues();
    this._markTouched();
    if (!Object.keys(card.needs).length) {
      return Promise.resolve({error: fieldError('incomplete_number')});
    }
    var state = checkFields(card.values, card.needs);
    return Promise.resolve(state.error ? {error: state.error} : {selectedPaymentMethod: 'card'});
  };

  // ---- 3D Secure modal --------------------------------------------------

  function challenge(pi) {
    injectStyle();
    return new Promise(function (resolve) {
      var overlay = document.createElement('div');
      overlay.className = 'stripe-sim-overlay';
      var dialog = document.createElement('div');
      dialog.className = 'stripe-sim-dialog';
      dialog.setAttribute('role', 'dialog');
      dialog.setAttribute('aria-modal', 'true');
      dialog.setAttribute('aria-labelledby', 'stripe-sim-3ds-title');
      var badge = document.createElement('div');
      badge.className = 'stripe-sim-badge';
      badge.textContent = 'TEST MODE · stripe_sim';
      var title = document.createElement('h2');
      title.id = 'stripe-sim-3ds-title';
      title.textContent = '3D Secure authentication';
      var text = document.createElement('p');
      text.textContent = (pi.object === 'setup_intent'
        ? 'Your bank asks you to confirm saving this card for later payments'
        : 'Your bank asks you to confirm a payment of ' +
          (pi.amount / 100).toFixed(2) + ' ' + String(pi.currency).toUpperCase()) +
        '. Choose how this test authentication ends.';
      var complete = document.createElement('button');
      complete.type = 'button';
      complete.className = 'stripe-sim-complete';
      complete.textContent = 'Complete';
      var fail = document.createElement('button');
      fail.type = 'button';
      fail.className = 'stripe-sim-fail';
      fail.textContent = 'Fail';
      function answer(outcome) {
        complete.disabled = true;
        fail.disabled = true;
        if (overlay.parentNode) { overlay.parentNode.removeChild(overlay); }
        resolve(outcome);
      }
      complete.addEventListener('click', function () { answer('complete'); });
      fail.addEventListener('click', function () { answer('fail'); });
      dialog.appendChild(badge);
      dialog.appendChild(title);
      dialog.appendChild(text);
      dialog.appendChild(complete);
      dialog.appendChild(fail);
      overlay.appendChild(dialog);
      document.body.appendChild(overlay);
      complete.focus();
    });
  }

  function isSetup(clientSecret) {
    return /^seti_/.test(String(clientSecret || ''));
  }

  function intentResult(pi) {
    if (pi.object === 'setup_intent') {
      if (pi.status === 'requires_payment_method' && pi.last_setup_error) {
        return {error: Object.assign({}, pi.last_setup_error, {setup_intent: pi})};
      }
      return {setupIntent: pi};
    }
    if (pi.status === 'requires_payment_method' && pi.last_payment_error) {
      return {error: Object.assign({}, pi.last_payment_error, {payment_intent: pi})};
    }
    return {paymentIntent: pi};
  }

  function apiResult(response, key) {
    if (response.status >= 200 && response.status < 300) {
      var result = {};
      result[key] = response.body;
      return result;
    }
    return {error: response.body.error || {type: 'api_error', message: 'Unexpected response'}};
  }

  // ---- Stripe -----------------------------------------------------------

  function Stripe(publishableKey, options) {
    if (!(this instanceof Stripe)) {
      return new Stripe(publishableKey, options);
    }
    if (typeof publishableKey !== 'string' || !publishableKey) {
      throw integrationError('Invalid value for Stripe(): apiKey should be a string. ' +
        'You specified: ' + publishableKey + '.');
    }
    if (/^sk_/.test(publishableKey)) {
      throw integrationError('You should not use your secret key with Stripe.js. ' +
        'Please pass a publishable key instead.');
    }
    this._key = publishableKey;
    this._options = options || {};
  }

  Stripe.version = 'endive';  // the release train @stripe/stripe-js expects
  Stripe.__stripeSim = true;
  Stripe._registerWrapper = function () {};
  Stripe.prototype._registerWrapper = function () {};
  Stripe.prototype.registerAppInfo = function () {};

  Stripe.prototype.elements = function (options) {
    return new StripeSimElements(this, options);
  };

  Stripe.prototype._api = function (method, path, params) {
    return api(this._key, method, path, params);
  };

  Stripe.prototype._createCardPaymentMethod = function (group, billingDetails, metadata) {
    var card = group._cardValues();
    var state = checkFields(card.values, card.needs);
    group._markTouched();
    if (state.error) {
      return Promise.resolve({error: state.error});
    }
    var exp = parseExpiry(card.values.expiry);
    var billing = Object.assign({}, billingDetails || {});
    if (card.values.postal) {
      billing.address = Object.assign({}, billing.address || {},
        {postal_code: String(card.values.postal).trim()});
    }
    return this._api('POST', '/v1/payment_methods', {
      type: 'card',
      card: {
        number: digitsOf(card.values.number),
        exp_month: exp.month,
        exp_year: exp.year,
        cvc: digitsOf(card.values.cvc)
      },
      billing_details: billing,
      metadata: metadata
    }).then(function (response) { return apiResult(response, 'paymentMethod'); });
  };

  Stripe.prototype.createPaymentMethod = function (a, b, c) {
    var group;
    var billing;
    var metadata;
    if (typeof a === 'string') {  // legacy: createPaymentMethod('card', element, data)
      group = b && b._group;
      billing = c && c.billing_details;
    } else if (a && a.elements) {
      group = a.elements;
      billing = a.params && a.params.billing_details;
      metadata = a.params && a.params.metadata;
    } else {
      group = a && a.card && a.card._group;
      billing = a && a.billing_details;
      metadata = a && a.metadata;
    }
    if (!group) {
      return Promise.reject(integrationError(
        'stripe.createPaymentMethod(): pass {type: "card", card: cardElement} or {elements}.'));
    }
    return this._createCardPaymentMethod(group, billing, metadata);
  };

  Stripe.prototype.createToken = function () {
    return Promise.resolve({error: {type: 'invalid_request_error',
      message: 'stripe_sim does not simulate tokens; use createPaymentMethod instead.'}});
  };

  Stripe.prototype.retrievePaymentIntent = function (clientSecret) {
    return this._api('GET', '/v1/payment_intents/' + intentId(clientSecret),
      {client_secret: clientSecret})
      .then(function (response) { return apiResult(response, 'paymentIntent'); });
  };

  Stripe.prototype.retrieveSetupIntent = function (clientSecret) {
    return this._api('GET', '/v1/setup_intents/' + intentId(clientSecret),
      {client_secret: clientSecret})
      .then(function (response) { return apiResult(response, 'setupIntent'); });
  };

  Stripe.prototype._retrieveIntent = function (clientSecret) {
    return isSetup(clientSecret)
      ? this.retrieveSetupIntent(clientSecret).then(function (r) {
        return r.error ? r : {intent: r.setupIntent};
      })
      : this.retrievePaymentIntent(clientSecret).then(function (r) {
        return r.error ? r : {intent: r.paymentIntent};
      });
  };

  // Show the 3D Secure dialog for an intent that needs it; resolve like Stripe.js.
  Stripe.prototype._handleActions = function (clientSecret, pi) {
    var self = this;
    if (pi.status !== 'requires_action') {
      return Promise.resolve(intentResult(pi));
    }
    return challenge(pi).then(function (outcome) {
      // Finish the challenge as Stripe.js does, with the publishable key; the
      // client secret proves the page holds this intent.
      var sdk = pi.next_action && pi.next_action.use_stripe_sdk;
      return self._api('POST', '/v1/3ds2/challenge_complete', {
        source: (sdk && sdk.source) || undefined,
        client_secret: clientSecret,
        outcome: outcome
      });
    }).then(function (response) {
      if (response.status >= 400) {
        return {error: response.body.error};
      }
      return self._retrieveIntent(clientSecret).then(function (result) {
        return result.error ? result : intentResult(result.intent);
      });
    });
  };

  Stripe.prototype._confirm = function (clientSecret, paymentMethodId, returnUrl, handleActions) {
    var self = this;
    var params = {client_secret: clientSecret, use_stripe_sdk: true};
    if (paymentMethodId) { params.payment_method = paymentMethodId; }
    if (returnUrl) { params.return_url = returnUrl; }
    var kind = isSetup(clientSecret) ? 'setup_intents' : 'payment_intents';
    return this._api('POST', '/v1/' + kind + '/' + intentId(clientSecret) + '/confirm', params)
      .then(function (response) {
        if (response.status >= 400) {
          return {error: response.body.error};
        }
        if (handleActions === false) {
          return isSetup(clientSecret) ? {setupIntent: response.body}
            : {paymentIntent: response.body};
        }
        return self._handleActions(clientSecret, response.body);
      });
  };

  // confirmPayment and confirmSetup: the card typed into Elements (or a PaymentMethod id),
  // then the customer sent to return_url unless `redirect: 'if_required'` and no redirect
  // is needed. `kind` is 'payment_intent' or 'setup_intent'; `resultKey` names the intent
  // in the result (paymentIntent, setupIntent).
  Stripe.prototype._confirmElements = function (method, kind, resultKey, options) {
    options = options || {};
    var self = this;
    var elements = options.elements;
    var confirmParams = options.confirmParams || {};
    var redirect = options.redirect || 'always';
    var clientSecret = options.clientSecret || (elements && elements._options.clientSecret);
    if (!clientSecret) {
      return Promise.reject(integrationError(
        'stripe.' + method + '(): a clientSecret is required (in Elements options or here).'));
    }
    if (redirect !== 'if_required' && !confirmParams.return_url) {
      return Promise.reject(integrationError(
        'stripe.' + method + '(): the `confirmParams.return_url` argument is required ' +
        "unless passing `redirect: 'if_required'`"));
    }
    if (!elements && !confirmParams.payment_method) {
      return Promise.reject(integrationError(
        'stripe.' + method + '(): pass the `elements` the card was typed into.'));
    }
    var pmData = confirmParams.payment_method_data || {};
    var pmPromise = confirmParams.payment_method
      ? Promise.resolve({paymentMethod: {id: confirmParams.payment_method}})
      : this._createCardPaymentMethod(elements, pmData.billing_details, pmData.metadata);
    return pmPromise.then(function (created) {
      if (created.error) {
        return created;
      }
      return self._confirm(clientSecret, created.paymentMethod.id, confirmParams.return_url, true);
    }).then(function (result) {
      var intent = result[resultKey];
      if (intent && redirect !== 'if_required' && confirmParams.return_url) {
        var url = new URL(confirmParams.return_url, window.location.href);
        url.searchParams.set(kind, intent.id);
        url.searchParams.set(kind + '_client_secret', clientSecret);
        url.searchParams.set('redirect_status', intent.status);
        window.location.assign(url.toString());
        return new Promise(function () {});  // the page is leaving, as with Stripe.js
      }
      return result;
    });
  };

  // confirmCardPayment and confirmCardSetup: a PaymentMethod id, a card Element's data or
  // nothing (the intent's own PaymentMethod); the client secret says which intent it is.
  Stripe.prototype._confirmCard = function (clientSecret, data, options) {
    var self = this;
    data = data || {};
    var handleActions = !(options && options.handleActions === false);
    var pm = data.payment_method;
    var pmPromise;
    if (typeof pm === 'string') {
      pmPromise = Promise.resolve({paymentMethod: {id: pm}});
    } else if (pm && pm.card && pm.card._group) {
      pmPromise = this._createCardPaymentMethod(pm.card._group, pm.billing_details, pm.metadata);
    } else {
      pmPromise = Promise.resolve({paymentMethod: null});
    }
    return pmPromise.then(function (created) {
      if (created.error) {
        return created;
      }
      var pmId = created.paymentMethod && created.paymentMethod.id;
      return self._confirm(clientSecret, pmId, data.return_url, handleActions);
    });
  };

  Stripe.prototype.confirmPayment = function (options) {
    return this._confirmElements('confirmPayment', 'payment_intent', 'paymentIntent', options);
  };

  Stripe.prototype.confirmCardPayment = function (clientSecret, data, options) {
    return this._confirmCard(clientSecret, data, options);
  };

  Stripe.prototype.handleNextAction = function (options) {
    var self = this;
    var clientSecret = options && options.clientSecret;
    return this._retrieveIntent(clientSecret).then(function (result) {
      return result.error ? result : self._handleActions(clientSecret, result.intent);
    });
  };

  Stripe.prototype.handleCardAction = function (clientSecret) {
    return this.handleNextAction({clientSecret: clientSecret});
  };

  // SetupIntents: save a card for later, with 3D Secure when the card asks for it.
  Stripe.prototype.confirmSetup = function (options) {
    return this._confirmElements('confirmSetup', 'setup_intent', 'setupIntent', options);
  };

  Stripe.prototype.confirmCardSetup = function (clientSecret, data, options) {
    return this._confirmCard(clientSecret, data, options);
  };

  Stripe.prototype.paymentRequest = function () {
    return {
      canMakePayment: function () { return Promise.resolve(null); },
      on: function () {},
      off: function () {},
      show: function () {},
      update: function () {}
    };
  };

  window.Stripe = Stripe;
})();
