/* Shared by every page: the read token, data fragments fetched with it, JSON reads with ETags.
 *
 * When reads need a token, a page's data parts are placeholders ([data-fragment]); they are
 * fetched here with "Authorization: Bearer <token>" (the token lives in this tab's session
 * storage) and inserted. Fragments are HTML rendered and escaped by the server's templates;
 * values from the JSON API are only ever written with textContent or drawn on a canvas.
 */
(function () {
  "use strict";

  const TOKEN_KEY = "runs_service.token";
  const readyCallbacks = [];
  const known = new Map(); // url -> {etag, data}: the last answer of a conditional read
  let isReady = false;

  class TokenNeeded extends Error {}

  function token() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY);
    } catch (error) {
      return null;
    }
  }

  function requestHeaders(extra) {
    const headers = Object.assign({}, extra);
    const value = token();
    if (value) headers.Authorization = "Bearer " + value;
    return headers;
  }

  async function messageOf(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") return body.message;
    } catch (error) {
      /* not JSON: fall through */
    }
    return "The service answered " + response.status + " " + response.statusText + ".";
  }

  function askForToken(status, message) {
    const panel = document.getElementById("token-panel");
    const form = document.getElementById("token-form");
    const text = document.getElementById("token-message");
    if (!panel || !form || !text) return;
    if (token() && status === 401) {
      form.classList.add("refused");
      text.textContent = "That token was refused: " + message + " Enter another token.";
    } else if (status === 403) {
      form.classList.add("refused");
      text.textContent = message;
    } else {
      text.textContent =
        "This service needs a token to read runs. It is kept in this tab only and sent as a Bearer header.";
    }
    panel.hidden = false;
    document.getElementById("token-input").focus();
  }

  async function request(url, accept, extraHeaders) {
    const response = await fetch(url, {
      headers: requestHeaders(Object.assign({ Accept: accept }, extraHeaders)),
      cache: "no-store",
      credentials: "same-origin",
    });
    if (response.status === 401 || response.status === 403) {
      const message = await messageOf(response);
      askForToken(response.status, message);
      throw new TokenNeeded(message);
    }
    return response;
  }

  /* A JSON read, conditional when the URL was read before: {changed, data}. A 304 answers
   * with the data of the previous read and changed = false. */
  async function getJSON(url) {
    const previous = known.get(url);
    const conditional = previous ? { "If-None-Match": previous.etag } : {};
    const response = await request(url, "application/json", conditional);
    if (response.status === 304 && previous) return { changed: false, data: previous.data };
    if (!response.ok) throw new Error(await messageOf(response));
    const data = await response.json();
    const etag = response.headers.get("ETag");
    if (etag) known.set(url, { etag: etag, data: data });
    return { changed: true, data: data };
  }

  function showError(container, message) {
    const box = document.createElement("div");
    box.className = "notice notice-error";
    box.setAttribute("role", "alert");
    const text = document.createElement("p");
    text.textContent = message;
    box.appendChild(text);
    container.replaceChildren(box);
  }

  async function loadFragment(slot) {
    const response = await request(slot.dataset.fragment, "text/html");
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("text/html")) {
      showError(slot, await messageOf(response));
      return;
    }
    // Server-rendered through Jinja's autoescaping: markup from the templates only.
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    slot.replaceChildren(template.content);
    delete slot.dataset.fragment;
  }

  function markReady() {
    isReady = true;
    const titled = document.querySelector("[data-title]");
    if (titled) document.title = titled.dataset.title + " · runs_service";
    readyCallbacks.splice(0).forEach(function (callback) {
      callback();
    });
  }

  async function start() {
    const slots = Array.from(document.querySelectorAll("[data-fragment]"));
    if (slots.length && !token()) {
      askForToken(0, "");
      return;
    }
    try {
      await Promise.all(slots.map(loadFragment));
    } catch (error) {
      if (!(error instanceof TokenNeeded)) {
        slots.forEach(function (slot) {
          showError(slot, "Could not load this part of the page: " + error.message);
        });
      }
      return;
    }
    markReady();
  }

  /* Downloads need the token too when reads are protected: fetch, then save the blob. */
  async function download(link) {
    const response = await request(link.href, "*/*");
    if (!response.ok) {
      window.alert(await messageOf(response));
      return;
    }
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    const url = URL.createObjectURL(await response.blob());
    const anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = match ? match[1] : "download";
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(function () {
      URL.revokeObjectURL(url);
    }, 1000);
  }

  function wireTokenControls() {
    const form = document.getElementById("token-form");
    const forget = document.getElementById("forget-token");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        const value = document.getElementById("token-input").value.trim();
        if (!value) return;
        window.sessionStorage.setItem(TOKEN_KEY, value);
        window.location.reload();
      });
    }
    if (forget && token()) {
      forget.hidden = false;
      forget.addEventListener("click", function () {
        window.sessionStorage.removeItem(TOKEN_KEY);
        window.location.reload();
      });
    }
    document.addEventListener("click", function (event) {
      const link = event.target.closest && event.target.closest("a.download");
      if (!link || !token()) return;
      event.preventDefault();
      download(link);
    });
  }

  window.Runs = {
    getJSON: getJSON,
    showError: showError,
    TokenNeeded: TokenNeeded,
    onReady: function (callback) {
      if (isReady) callback();
      else readyCallbacks.push(callback);
    },
  };

  document.addEventListener("DOMContentLoaded", function () {
    wireTokenControls();
    start();
  });
})();
