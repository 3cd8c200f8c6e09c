"""The cashier page's inline stylesheet and script (no CDN, no build step).

The script plays the shopper by POSTing to the sandbox's own controls (same origin), then
watches the payfront token at the gateway (CORS ``*``) until its status changes.
"""

from __future__ import annotations

CASHIER_CSS = """
:root { color-scheme: light; font-family: system-ui, sans-serif; }
body { margin: 0; background: #f3f4f6; color: #111827; }
main { max-width: 28rem; margin: 2rem auto; padding: 1.5rem; background: #fff;
       border-radius: 12px; box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }
header { font-weight: 600; margin-bottom: 1rem; }
.badge { background: #f59e0b; color: #fff; border-radius: 4px; padding: .1rem .4rem;
         font-size: .75rem; letter-spacing: .05em; }
.amount { font-size: 2rem; font-weight: 700; margin: .5rem 0; }
.meta, .muted { color: #4b5563; font-size: .9rem; }
.failure { color: #b91c1c; }
figure.qr { margin: 1rem 0; text-align: center; }
figure.qr svg { display: block; margin: 0 auto; border: 1px solid #e5e7eb; }
figcaption { font-family: ui-monospace, monospace; font-size: .75rem; color: #4b5563;
             word-break: break-all; margin-top: .5rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .75rem 0; }
button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid #d1d5db;
         background: #fff; cursor: pointer; }
button[data-action="pay"] { background: #16a34a; border-color: #16a34a; color: #fff; }
button:disabled { opacity: .5; cursor: progress; }
input { font: inherit; width: 7rem; padding: .35rem; }
.result { min-height: 1.5rem; font-size: .9rem; }
pre { background: #f9fafb; padding: .5rem; overflow-x: auto; }
"""

CASHIER_JS = """
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("cashier-config").textContent);
  const statusEl = document.querySelector('[data-testid="status"]');
  const resultEl = document.querySelector('[data-testid="action-result"]');
  const amountInput = document.querySelector('[data-testid="paid-amount-input"]');
  const buttons = Array.from(document.querySelectorAll("button[data-action]"));
  const WATCH_MS = 10000;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function showStatus(status) {
    statusEl.textContent = status;
    statusEl.dataset.status = status;
  }

  function showResult(outcome, text) {
    resultEl.dataset.outcome = outcome;
    resultEl.textContent = text;
  }

  async function readToken(waitS) {
    const answer = await fetch(config.token_url + "?wait=" + waitS, { cache: "no-store" });
    if (!answer.ok) throw new Error("the gateway answered " + answer.status);
    return answer.json();
  }

  // Until the status leaves `from`: the gateway itself long-polls while the token is being
  // prepared; after that its answer is immediate, so the page re-reads every 300 ms.
  async function watch(from, forMs) {
    const end = Date.now() + forMs;
    while (Date.now() < end) {
      const prepaying = config.prepay_statuses.includes(from);
      const leftS = Math.floor((end - Date.now()) / 1000);
      const waitS = prepaying ? Math.max(0, Math.min(25, leftS)) : 0;
      let view = null;
      try {
        view = await readToken(waitS);
      } catch (error) {
        showResult("gateway-error", String(error));
      }
      if (view !== null && view.status !== from) return view;
      if (!prepaying || view === null) await sleep(300);
    }
    return null;
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { ok: answer.ok, status: answer.status, text: await answer.text() };
  }

  function steps(action) {
    const field = config.controls.amount_field;
    if (action === "pay") return [{ outcome: "success" }];
    if (action === "fail") return [{ outcome: "fail" }];
    if (action === "pay-twice") {
      return [{ outcome: "success" }, { outcome: "success", again: true }];
    }
    if (action === "pay-amount") {
      const amount = Number.parseInt(amountInput.value, 10);
      return [{ outcome: "success", [field]: amount }];
    }
    throw new Error("unknown action " + action);
  }

  async function openFirst(url) {
    // Alipay page/wap: the sandbox knows the trade once its signed URL has been opened.
    const target = new URL(url, location.href);
    if (target.origin !== location.origin) return;
    await fetch(target, { headers: { Accept: "application/json" } });
  }

  async function act(action) {
    const before = statusEl.dataset.status;
    buttons.forEach((button) => { button.disabled = true; });
    try {
      if (config.controls.open_url) await openFirst(config.controls.open_url);
      const codes = [];
      for (const body of steps(action)) {
        const answer = await post(config.controls.pay_url, body);
        codes.push(answer.status);
        if (!answer.ok) {
          showResult("refused", "The sandbox refused (" + answer.status + "): " + answer.text);
          return;
        }
      }
      showResult("sent", "The sandbox answered " + codes.join(", ") + "; watching payfront…");
      const view = await watch(before, WATCH_MS);
      if (view === null) {
        showResult("unchanged", "payfront status unchanged: " + before);
      } else {
        showStatus(view.status);
        showResult("changed", "payfront status: " + before + " → " + view.status);
      }
    } catch (error) {
      showResult("error", String(error));
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  buttons.forEach((button) => {
    button.addEventListener("click", () => act(button.dataset.action));
  });

  // Opened before the worker got the credential: wait for it, then render it server-side.
  if (config.prepay_statuses.includes(config.status)) {
    (async () => {
      for (;;) {
        const view = await watch(config.status, 30000);
        if (view !== null) {
          location.reload();
          return;
        }
      }
    })();
  }
})();
"""
