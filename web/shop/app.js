// The storefront: sign-in (OAuth 2.1 authorization code + PKCE, public client), products, a cart
// kept in sessionStorage, checkout with one Idempotency-Key per cart, order history, sign-out.
// Tokens live in this module's memory only: a reload means signing in again.

const CLIENT_ID = document.querySelector('meta[name="oauth-client-id"]').content;
const REDIRECT_URI = `${location.origin}/shop/`;
const SCOPE = "accounts.read catalog.read orders.read orders.write";
const PENDING_SIGN_IN = "shop.pendingSignIn"; // {verifier, state}, only across the redirect
const CART = "shop.cart"; // {items: [{productId, name, unitPrice, quantity}], checkoutKey}
const MAX_QUANTITY = 999;
const UNAVAILABLE = "The shop is temporarily unavailable. Your cart is kept; please try again.";
const EXPIRED = "Your session has expired. Please sign in again.";
const UNREACHABLE = "The shop could not be reached. Your cart is kept; please check your connection and try again.";
const CANCELLABLE = new Set(["PENDING", "CONFIRMED"]);

let session = null; // {accessToken, refreshToken, accountId, username}
let refreshing = null; // the refresh under way, shared by every call that met a 401
let checkingOut = false;
let products = new Map();

const $ = (id) => document.getElementById(id);

class SessionExpired extends Error {}

// --- small helpers --------------------------------------------------------------------------------

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(bytes) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** An element with attributes, listeners (onclick: ...) and children; text is never parsed as HTML. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value != null) node.setAttribute(key, String(value));
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

/** Text that only screen readers get, to tell apart controls that look alike ("Remove: Mug"). */
function hiddenText(text) {
  return el("span", { class: "visually-hidden", text });
}

function sentence(text) {
  const trimmed = String(text || "").trim();
  return trimmed ? trimmed[0].toUpperCase() + trimmed.slice(1) : "";
}

function formatMoney(money) {
  if (!money || money.amountMinor == null || !money.currencyCode) return "–";
  try {
    const format = new Intl.NumberFormat("en", { style: "currency", currency: money.currencyCode });
    return format.format(Number(money.amountMinor) / 10 ** format.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${money.amountMinor} ${money.currencyCode} (minor units)`;
  }
}

function formatTotal(lines) {
  const byCurrency = new Map();
  for (const { unitPrice, quantity } of lines) {
    if (!unitPrice || unitPrice.amountMinor == null) continue;
    const code = unitPrice.currencyCode;
    byCurrency.set(code, (byCurrency.get(code) || 0) + Number(unitPrice.amountMinor) * quantity);
  }
  if (!byCurrency.size) return "–";
  return [...byCurrency].map(([currencyCode, amount]) => formatMoney({ currencyCode, amountMinor: amount })).join(" + ");
}

function formatTime(timestamp) {
  const date = new Date(timestamp);
  if (!timestamp || Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" }).format(date);
}

function say(text) {
  $("alert").textContent = "";
  $("status").textContent = text;
}

function warn(text) {
  $("status").textContent = "";
  $("alert").textContent = text;
}

function clearMessages() {
  $("status").textContent = "";
  $("alert").textContent = "";
}

async function readProblem(response) {
  try {
    const body = await response.json();
    if (body && typeof body === "object") return body;
  } catch {
    // not JSON: fall through to the status line
  }
  return { status: response.status, detail: response.statusText || `HTTP ${response.status}` };
}

function retryAfterText(response) {
  const value = (response.headers.get("Retry-After") || "").trim();
  let seconds = /^\d+$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(seconds) && value) seconds = Math.ceil((Date.parse(value) - Date.now()) / 1000);
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  return ` It should be back in about ${seconds} second${seconds === 1 ? "" : "s"}.`;
}

/** Shows why a request failed: unavailable (5xx from a service outage), or the problem's detail. */
async function reportFailure(response, what) {
  if ([502, 503, 504].includes(response.status)) {
    warn(UNAVAILABLE + retryAfterText(response));
    return;
  }
  const problem = await readProblem(response);
  warn(`${what}: ${sentence(problem.detail || problem.title || `HTTP ${response.status}`)}.`.replace(/\.\.$/, "."));
}

/** Runs a user action; a lost session or network has already been, or is now, reported. */
async function run(action) {
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionExpired) return;
    if (error instanceof TypeError) {
      warn(UNREACHABLE);
      return;
    }
    warn("Something went wrong on this page. Your cart is kept; please try again.");
    throw error;
  }
}

// --- OAuth 2.1: authorization code with PKCE ------------------------------------------------------

async function startSignIn() {
  const verifier = randomToken(32);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const state = randomToken(16);
  sessionStorage.setItem(PENDING_SIGN_IN, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code", client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: SCOPE, state,
    code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: "S256",
  });
  location.assign(`/oauth2/authorize?${query}`);
}

function tokenRequest(fields) {
  return fetch("/oauth2/token", { method: "POST", body: new URLSearchParams(fields), cache: "no-store" });
}

async function issuer() {
  const response = await fetch("/.well-known/oauth-authorization-server", { headers: { Accept: "application/json" } });
  if (!response.ok) return null;
  return (await response.json()).issuer || null;
}

/** Back from /oauth2/authorize: checks state and issuer (RFC 9207), then swaps the code for tokens. */
async function finishSignIn(params) {
  let pending = null;
  try {
    pending = JSON.parse(sessionStorage.getItem(PENDING_SIGN_IN) || "null");
  } catch {
    pending = null;
  }
  sessionStorage.removeItem(PENDING_SIGN_IN);
  history.replaceState(null, "", location.pathname); // the code leaves the address bar and the history
  if (!pending || !params.get("state") || params.get("state") !== pending.state) {
    warn("Sign-in failed: the answer does not belong to a sign-in started on this page. Please sign in again.");
    return;
  }
  const expected = await issuer();
  if (!expected || params.get("iss") !== expected) {
    warn("Sign-in failed: the answer did not come from this shop's sign-in service. Please sign in again.");
    return;
  }
  if (params.has("error")) {
    warn(`Sign-in did not complete: ${sentence(params.get("error_description") || params.get("error"))}.`);
    return;
  }
  const response = await tokenRequest({
    grant_type: "authorization_code", code: params.get("code") || "", redirect_uri: REDIRECT_URI,
    client_id: CLIENT_ID, code_verifier: pending.verifier,
  });
  if (!response.ok) {
    const problem = await readProblem(response);
    warn(`Sign-in failed: ${sentence(problem.error_description || problem.error || problem.detail)}. Please sign in again.`);
    return;
  }
  startSession(await response.json());
}

function subjectOf(accessToken) {
  try {
    const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).sub || "";
  } catch {
    return "";
  }
}

function startSession(tokens) {
  session = {
    accessToken: tokens.access_token, refreshToken: tokens.refresh_token || "",
    accountId: subjectOf(tokens.access_token), username: "",
  };
  say("You are signed in.");
}

function refreshSession() {
  refreshing ??= renewTokens().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function renewTokens() {
  const current = session;
  if (!current || !current.refreshToken) return false;
  try {
    const response = await tokenRequest({ grant_type: "refresh_token", refresh_token: current.refreshToken, client_id: CLIENT_ID });
    if (!response.ok) return false;
    const tokens = await response.json();
    if (session !== current) return false; // signed out meanwhile
    session = { ...current, accessToken: tokens.access_token, refreshToken: tokens.refresh_token || current.refreshToken };
    return true;
  } catch {
    return false;
  }
}

function sessionExpired() {
  if (!session) return;
  session = null;
  products = new Map();
  render();
  warn(EXPIRED);
}

/** A call to the API with the access token; on a 401 the tokens are refreshed once, then it is retried. */
async function api(path, { method = "GET", json, headers = {} } = {}) {
  const send = (accessToken) => fetch(path, {
    method, cache: "no-store",
    headers: {
      Accept: "application/json", Authorization: `Bearer ${accessToken}`,
      ...(json === undefined ? {} : { "Content-Type": "application/json" }), ...headers,
    },
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  if (!session) throw new SessionExpired();
  const used = session.accessToken;
  let response = await send(used);
  if (response.status !== 401) return response;
  // Another call may have refreshed the tokens while this one was under way.
  if (session && (session.accessToken !== used || await refreshSession()) && session) {
    response = await send(session.accessToken);
    if (response.status !== 401) return response;
  }
  sessionExpired();
  throw new SessionExpired();
}

async function signOut() {
  const current = session;
  if (!current) return;
  $("sign-out").disabled = true;
  let revoked = false;
  try {
    const response = await fetch("/oauth2/revoke", {
      method: "POST",
      body: new URLSearchParams({ token: current.refreshToken, token_type_hint: "refresh_token", client_id: CLIENT_ID }),
    });
    revoked = response.ok;
  } catch {
    revoked = false;
  }
  session = null;
  products = new Map();
  // The cart belongs to whoever shopped: on a shared computer the next person should not see it.
  sessionStorage.removeItem(CART);
  $("sign-out").disabled = false;
  render();
  if (revoked) say("You are signed out.");
  else warn("You are signed out on this page, but the shop could not be told. Close the browser to be sure.");
}

// --- account --------------------------------------------------------------------------------------

const SIGNUP_FIELDS = ["username", "email", "password"];
const SIGNUP_EMPTY = { username: "Enter a username.", email: "Enter your email address.", password: "Choose a password." };

function showFieldError(field, message) {
  const input = $(`signup-${field}`);
  const error = $(`signup-${field}-error`);
  input.setAttribute("aria-invalid", "true");
  error.textContent = error.textContent ? `${error.textContent} ${message}` : message;
  error.hidden = false;
}

function clearSignupErrors() {
  for (const field of SIGNUP_FIELDS) {
    $(`signup-${field}`).removeAttribute("aria-invalid");
    $(`signup-${field}-error`).textContent = "";
    $(`signup-${field}-error`).hidden = true;
  }
  $("signup-error").textContent = "";
  $("signup-error").hidden = true;
}

function focusFirstInvalid() {
  const invalid = SIGNUP_FIELDS.map((field) => $(`signup-${field}`)).find((input) => input.getAttribute("aria-invalid"));
  if (invalid) invalid.focus();
}

async function signUp(event) {
  event.preventDefault();
  clearMessages();
  clearSignupErrors();
  const form = event.currentTarget;
  const values = Object.fromEntries(SIGNUP_FIELDS.map((field) => [field, form.elements[field].value.trim()]));
  values.password = form.elements.password.value; // spaces are part of a password
  const empty = SIGNUP_FIELDS.filter((field) => !values[field]);
  if (empty.length) {
    for (const field of empty) showFieldError(field, SIGNUP_EMPTY[field]);
    warn("Please correct the highlighted fields.");
    focusFirstInvalid();
    return;
  }
  $("signup-submit").disabled = true;
  try {
    const response = await fetch("/v1/accounts", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(values),
    });
    if (response.ok) {
      form.reset();
      say("Your account is created. Taking you to sign in…");
      await startSignIn();
      return;
    }
    if (response.status >= 500) {
      await reportFailure(response, "Could not create the account");
      return;
    }
    const problem = await readProblem(response);
    const violations = problem.violations || problem.fieldViolations || [];
    let shown = 0;
    for (const violation of violations) {
      const field = String(violation.field || "").split(".").pop();
      if (SIGNUP_FIELDS.includes(field)) {
        showFieldError(field, `${sentence(violation.description)}.`);
        shown += 1;
      }
    }
    if (!shown) {
      $("signup-error").textContent = `${sentence(problem.detail || "The account could not be created")}.`;
      $("signup-error").hidden = false;
    }
    warn("The account could not be created. Please correct the highlighted fields.");
    focusFirstInvalid();
  } finally {
    $("signup-submit").disabled = false;
  }
}

async function loadAccount() {
  if (!session || !session.accountId) return;
  const response = await api(`/v1/accounts/${encodeURIComponent(session.accountId)}`);
  if (!response.ok || !session) return; // the name is a courtesy; the shop works without it
  const account = await response.json();
  session.username = (account.profile && account.profile.displayName) || account.username || "";
  renderAccount();
}

// --- products -------------------------------------------------------------------------------------

async function loadProducts() {
  const found = [];
  let pageToken = "";
  do {
    const query = new URLSearchParams({ pageSize: "100", ...(pageToken ? { pageToken } : {}) });
    const response = await api(`/v1/products?${query}`);
    if (!response.ok) {
      await reportFailure(response, "Could not load the products");
      return;
    }
    const page = await response.json();
    found.push(...(page.products || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken && found.length < 1000);
  products = new Map(found.filter((p) => p.state !== "ARCHIVED").map((p) => [p.id, p]));
  renderProducts();
}

/** A whole number in [1, max], or a sentence saying what is wrong. */
function parseQuantity(text, max) {
  const quantity = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || quantity < 1) return { error: "Choose a quantity of at least 1." };
  if (quantity > max) return { error: `Only ${max} can be ordered.` };
  return { quantity };
}

function addToCart(product, input) {
  const cart = loadCart();
  const inCart = cart.items.find((item) => item.productId === product.id);
  const stock = Number(product.stock || 0);
  const room = Math.min(MAX_QUANTITY, stock) - (inCart ? inCart.quantity : 0);
  if (room <= 0) {
    warn(`${product.name}: your cart already holds all ${stock} in stock.`);
    return;
  }
  const parsed = parseQuantity(input.value, room);
  if (parsed.error) {
    warn(`${product.name}: ${parsed.error}`);
    input.focus();
    return;
  }
  changeCart((items) => {
    if (inCart) items.find((item) => item.productId === product.id).quantity += parsed.quantity;
    else items.push({ productId: product.id, name: product.name, unitPrice: product.price, quantity: parsed.quantity });
  });
  input.value = "1";
  say(`Added ${parsed.quantity} × ${product.name} to your cart.`);
}

function renderProducts() {
  const list = $("products");
  // A re-render (new stock after an order) keeps what the shopper typed and where the focus was.
  const typed = new Map([...list.querySelectorAll("input")].map((input) => [input.id, input.value]));
  const focused = list.contains(document.activeElement) ? document.activeElement.id : "";
  list.replaceChildren(...[...products.values()].map((product) => {
    const stock = Number(product.stock || 0);
    const inputId = `qty-${product.id}`;
    const descriptionId = `desc-${product.id}`;
    const available = stock > 0;
    return el("li", { class: "product", "data-product-id": product.id },
      el("h3", { text: product.name }),
      product.description ? el("p", { id: descriptionId, class: "description", text: product.description }) : null,
      el("p", { class: "price", text: formatMoney(product.price) }),
      el("p", { class: available ? "stock" : "stock out", text: available ? `${stock} in stock` : "Out of stock" }),
      available ? el("div", { class: "add" },
        el("label", { for: inputId }, "Quantity", hiddenText(` of ${product.name} to add`)),
        el("input", { id: inputId, type: "number", inputmode: "numeric", min: 1, max: Math.min(stock, MAX_QUANTITY),
          value: typed.get(inputId) ?? 1 }),
        el("button", { type: "button", class: "add-to-cart", disabled: checkingOut,
          onclick: () => addToCart(product, $(inputId)) }, "Add to cart", hiddenText(`: ${product.name}`)),
      ) : el("button", { type: "button", class: "add-to-cart", disabled: true }, "Add to cart", hiddenText(`: ${product.name}`)),
    );
  }));
  if (focused && $(focused)) $(focused).focus();
  $("products-empty").hidden = products.size > 0;
}

// --- cart -----------------------------------------------------------------------------------------

function loadCart() {
  try {
    const cart = JSON.parse(sessionStorage.getItem(CART) || "null");
    if (cart && Array.isArray(cart.items)) return cart;
  } catch {
    // a damaged cart is an empty one
  }
  return { items: [], checkoutKey: null };
}

function saveCart(cart) {
  if (cart.items.length || cart.checkoutKey) sessionStorage.setItem(CART, JSON.stringify(cart));
  else sessionStorage.removeItem(CART);
}

/** Any change to the cart makes it another order: its Idempotency-Key is dropped. */
function changeCart(mutate) {
  const cart = loadCart();
  mutate(cart.items);
  cart.items = cart.items.filter((item) => item.quantity > 0);
  cart.checkoutKey = null;
  saveCart(cart);
  renderCart();
}

function changeQuantity(item, input) {
  const product = products.get(item.productId);
  const parsed = parseQuantity(input.value, Math.min(MAX_QUANTITY, product ? Number(product.stock || 0) : MAX_QUANTITY));
  if (parsed.error) {
    warn(`${item.name}: ${parsed.error}`);
    input.value = String(item.quantity);
    return;
  }
  clearMessages();
  changeCart((items) => {
    items.find((line) => line.productId === item.productId).quantity = parsed.quantity;
  });
}

function removeFromCart(item) {
  changeCart((items) => items.splice(items.findIndex((line) => line.productId === item.productId), 1));
  say(`Removed ${item.name} from your cart.`);
}

function renderCart() {
  const cart = loadCart();
  const signedIn = session !== null;
  $("cart-section").hidden = !signedIn && !cart.items.length;
  $("cart").replaceChildren(...cart.items.map((item) => {
    const inputId = `cart-qty-${item.productId}`;
    return el("li", { class: "cart-item", "data-product-id": item.productId },
      el("span", { class: "name", text: item.name }),
      el("span", { class: "unit-price", text: formatMoney(item.unitPrice) }),
      el("label", { for: inputId, class: "visually-hidden", text: `Quantity of ${item.name} in cart` }),
      el("input", { id: inputId, type: "number", inputmode: "numeric", min: 1, value: item.quantity, disabled: checkingOut,
        onchange: (event) => changeQuantity(item, event.currentTarget) }),
      el("button", { type: "button", class: "secondary remove", disabled: checkingOut, onclick: () => removeFromCart(item) },
        "Remove", hiddenText(`: ${item.name}`)),
    );
  }));
  $("cart-empty").hidden = cart.items.length > 0;
  $("cart-total").textContent = formatTotal(cart.items);
  const checkout = $("checkout");
  checkout.disabled = checkingOut || !signedIn || !cart.items.length;
  checkout.textContent = checkingOut ? "Placing your order…" : "Check out";
  $("checkout-hint").hidden = signedIn || !cart.items.length;
}

// --- checkout -------------------------------------------------------------------------------------

function setCheckingOut(busy) {
  checkingOut = busy;
  $("cart-section").setAttribute("aria-busy", busy ? "true" : "false");
  renderCart();
  renderProducts();
}

function outOfStockMessage(problem, items) {
  const names = (problem.violations || problem.fieldViolations || [])
    .map((violation) => /^items\[(\d+)\]/.exec(violation.field || ""))
    .filter(Boolean)
    .map((match) => items[Number(match[1])])
    .filter(Boolean)
    .map((item) => `${item.name} (you asked for ${item.quantity})`);
  const what = names.length ? `Not enough stock for ${names.join(", ")}.` : "Some items in your cart are out of stock.";
  return `${what} Your cart is kept: lower the quantity or remove the item, then check out again.`;
}

/** One order per cart: the key is made when a checkout starts and kept with the cart, so a retry
 * (after an outage, a lost answer or a reload) cannot place a second order. */
async function checkout() {
  if (checkingOut || !session) return;
  setCheckingOut(true); // before any await: a second click meets a disabled button
  clearMessages();
  try {
    await placeOrder();
  } finally {
    setCheckingOut(false);
  }
}

async function placeOrder() {
  // Two passes at most: a key whose earlier order was cancelled (an outage) is spent, so a new one is made.
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const cart = loadCart();
    if (!cart.items.length) return;
    if (!cart.checkoutKey) {
      cart.checkoutKey = crypto.randomUUID();
      saveCart(cart);
    }
    const response = await api("/v1/orders", {
      method: "POST", headers: { "Idempotency-Key": cart.checkoutKey },
      json: { items: cart.items.map((item) => ({ productId: item.productId, quantity: item.quantity })) },
    });
    if (response.ok) {
      const order = await response.json();
      if (order.status === "CANCELLED") {
        // This key's first attempt failed and was cancelled for good; nothing is held. Try anew.
        saveCart({ ...cart, checkoutKey: null });
        continue;
      }
      if (order.status === "CONFIRMED") saveCart({ items: [], checkoutKey: null });
      renderCart();
      await Promise.all([loadOrders(), loadProducts()]); // the new order and the stock it took
      if (order.status === "CONFIRMED") {
        say(`Thank you! Your order ${order.id} is confirmed. Total: ${formatMoney(order.total)}.`);
      } else {
        say(`Your order ${order.id} is being processed. Your cart is kept: checking out again will not order twice.`);
      }
      return;
    }
    const problem = response.status >= 500 ? null : await readProblem(response);
    if (response.status === 409 && /STOCK/.test(problem.reason || "")) {
      saveCart({ ...cart, checkoutKey: null }); // refused (REJECTED): that key's order is settled
      warn(outOfStockMessage(problem, cart.items));
      await Promise.all([loadOrders(), loadProducts()]); // the refused attempt is in the history
      return;
    }
    if (problem && response.status !== 408 && response.status !== 429) {
      saveCart({ ...cart, checkoutKey: null });
      warn(`Your order was not placed: ${sentence(problem.detail || problem.title)}. Your cart is kept.`.replace(/\.\./, "."));
      return;
    }
    await reportFailure(response, "Your order was not placed"); // the key stays: a retry is the same order
    return;
  }
  warn("Your order could not be placed. Your cart is kept; please try again.");
}

// --- orders ---------------------------------------------------------------------------------------

async function loadOrders() {
  const response = await api("/v1/orders?pageSize=50");
  if (!response.ok) {
    await reportFailure(response, "Could not load your orders");
    return;
  }
  renderOrders((await response.json()).orders || []);
}

const STATUS_LABELS = { PENDING: "Being placed", CONFIRMED: "Confirmed", CANCELLED: "Cancelled", REJECTED: "Not placed" };

function itemName(item) {
  return item.name || (products.get(item.productId) || {}).name || item.productId;
}

function renderOrders(orders) {
  $("orders").replaceChildren(...orders.map((order) => {
    const explained = order.status === "CANCELLED" || order.status === "REJECTED";
    const reason = explained && order.statusReason ? ` (${order.statusReason.replace(/_/g, " ")})` : "";
    return el("li", { class: "order", "data-order-id": order.id, "data-status": order.status },
      el("h3", {}, "Order ", el("span", { class: "order-id", text: order.id })),
      el("p", { class: "meta" },
        el("span", { class: `status status-${String(order.status).toLowerCase()}`, text: `${STATUS_LABELS[order.status] || order.status}${reason}` }),
        el("span", { text: ` · ${formatTime(order.createTime)}` })),
      el("ul", { class: "order-items" }, ...(order.items || []).map((item) => el("li", {
        text: `${Number(item.quantity)} × ${itemName(item)}${item.unitPrice ? ` at ${formatMoney(item.unitPrice)}` : ""}`,
      }))),
      el("p", { class: "order-total" }, "Total: ", el("strong", { text: formatMoney(order.total) })),
      CANCELLABLE.has(order.status) ? el("button", { type: "button", class: "secondary cancel",
        onclick: (event) => run(() => cancelOrder(order, event.currentTarget)) }, "Cancel", hiddenText(` order ${order.id}`)) : null,
    );
  }));
  $("orders-empty").hidden = orders.length > 0;
}

async function cancelOrder(order, button) {
  button.disabled = true;
  clearMessages();
  try {
    const response = await api(`/v1/orders/${encodeURIComponent(order.id)}:cancel`, { method: "POST", json: {} });
    if (!response.ok) {
      await reportFailure(response, "The order was not cancelled");
      return;
    }
    await Promise.all([loadOrders(), loadProducts()]);
    say(`Order ${order.id} is cancelled.`);
  } finally {
    button.disabled = false;
  }
}

// --- page -----------------------------------------------------------------------------------------

function renderAccount() {
  const signedIn = session !== null;
  $("who").textContent = signedIn && session.username ? `Signed in as ${session.username}` : "";
  $("who").hidden = !signedIn || !session.username;
  $("sign-out").hidden = !signedIn;
}

function render() {
  const signedIn = session !== null;
  $("signed-out").hidden = signedIn;
  $("products-section").hidden = !signedIn;
  $("orders-section").hidden = !signedIn;
  if (!signedIn) {
    $("products").replaceChildren();
    $("orders").replaceChildren();
  }
  renderAccount();
  renderCart();
}

async function init() {
  $("sign-in").addEventListener("click", () => run(startSignIn));
  $("sign-out").addEventListener("click", () => run(signOut));
  $("signup").addEventListener("submit", (event) => run(() => signUp(event)));
  $("checkout").addEventListener("click", () => run(checkout));
  $("refresh-orders").addEventListener("click", () => run(async () => {
    clearMessages();
    await loadOrders();
  }));
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    say("Signing you in…");
    await run(() => finishSignIn(params));
  }
  render();
  if (session) await run(() => Promise.all([loadAccount(), loadProducts(), loadOrders()]));
  document.body.dataset.ready = "true"; // the page has settled (tests wait for it)
}

init();
