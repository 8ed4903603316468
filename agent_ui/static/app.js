/* Shared page code: CSRF-protected fetch, forms that post JSON to the API, toasts, live updates, timers. */
"use strict";

const Hotline = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function api(method, url, body) {
    const options = { method, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const message = (data && (data.detail_zh || data.detail)) || `请求失败（${response.status}）`;
      const error = new Error(message);
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  function toast(message, kind = "info") {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = `toast ${kind}`;
    item.textContent = message;
    box.appendChild(item);
    setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
  }

  /* A form's fields as the JSON body of an API call: number inputs become numbers, checkboxes
     booleans, fields marked data-list arrays (comma separated); empty optional fields are left out. */
  function formBody(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled || field.name === "csrf_token" || field.dataset.skip !== undefined) continue;
      if (field.type === "checkbox") { body[field.name] = field.checked; continue; }
      if (field.type === "radio" && !field.checked) continue;
      let value = field.value.trim();
      if (value === "") continue;
      if (field.type === "number" || field.dataset.type === "int") value = Number(value);
      if (field.dataset.list !== undefined) value = value.split(/[,，\s]+/).filter(Boolean);
      body[field.name] = value;
    }
    return body;
  }

  function showError(form, message) {
    let box = form.querySelector(".form-error");
    if (!box) {
      box = document.createElement("div");
      box.className = "form-error alert error";
      form.prepend(box);
    }
    box.textContent = message;
    box.hidden = !message;
  }

  const FLASH = "hotline.flash";
  function showFlash() {
    const message = sessionStorage.getItem(FLASH);
    if (!message) return;
    sessionStorage.removeItem(FLASH);
    toast(message, "ok");
  }

  async function submitApiForm(event) {
    const form = event.target.closest("form[data-api]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    showError(form, "");
    try {
      const result = await api(form.dataset.method || "POST", form.dataset.api, formBody(form));
      form.dispatchEvent(new CustomEvent("api:done", { detail: result, bubbles: true }));
      const then = form.dataset.then || "reload";
      // A page about to reload says its success after the reload (else it would flash by unread).
      if (form.dataset.success && then === "reload") sessionStorage.setItem(FLASH, form.dataset.success);
      else if (form.dataset.success) toast(form.dataset.success, "ok");
      if (then === "reload") setTimeout(() => window.location.reload(), 300);
      else if (then.startsWith("go:")) window.location.href = then.slice(3);
    } catch (error) {
      showError(form, error.message);  // what the user typed stays in the form
    } finally {
      if (button) button.disabled = false;
    }
  }

  /* Server-sent events: one stream per page, handlers per topic prefix. */
  const handlers = [];
  let source = null;
  function on(prefix, handler) {
    handlers.push([prefix, handler]);
    connect();
  }
  function connect() {
    if (source || !document.body.dataset.role) return;
    source = new EventSource("/events");
    const dot = document.getElementById("live-dot");
    source.onopen = () => dot && dot.classList.add("on");
    source.onerror = () => dot && dot.classList.remove("on");
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      for (const [prefix, handler] of handlers) {
        if (event.topic.startsWith(prefix)) handler(event.payload, event);
      }
    };
  }

  /* Elements with data-since="ISO time" show the time elapsed since then (mm:ss or h:mm:ss). */
  function elapsed(since) {
    const seconds = Math.max(0, Math.floor((Date.now() - new Date(since).getTime()) / 1000));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
  }
  function tick() {
    /* data-seconds="N" (time in state as the server counted it) starts a timer from now - N. */
    for (const el of document.querySelectorAll("[data-seconds]")) {
      el.dataset.since = new Date(Date.now() - Number(el.dataset.seconds) * 1000).toISOString();
      delete el.dataset.seconds;
    }
    for (const el of document.querySelectorAll("[data-since]")) {
      if (el.dataset.since) el.textContent = elapsed(el.dataset.since);
    }
  }
  setInterval(tick, 1000);

  function escape(text) {
    const div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  // "2026-11-10T10:00:00+08:00" → "11-10 10:00" (this year), "2025-11-10 10:00" (an earlier one).
  function shortTime(iso) {
    if (!iso) return "";
    const text = String(iso).replace("T", " ");
    return text.slice(0, 4) === String(new Date().getFullYear()) ? text.slice(5, 16) : text.slice(0, 16);
  }

  document.addEventListener("submit", submitApiForm);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("DOMContentLoaded", showFlash);
  return { api, toast, on, connect, formBody, showError, escape, elapsed, csrf, shortTime };
})();
