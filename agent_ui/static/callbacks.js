/* Seat console: callbacks that need a person and the missed-call list. "拨打" claims the callback and
   places the call (the citizen first, then this seat's phone); the operator then enters the result. */
"use strict";

(() => {
  const { api, toast, escape, showError } = Hotline;
  const manual = document.getElementById("manual-callbacks");
  const missed = document.getElementById("missed-calls");
  const resultForm = document.getElementById("callback-result");
  const missedForm = document.getElementById("missed-result");
  if (!manual || !missed) return;
  let current = null;  // {kind: "callback"|"missed", id}

  const header = (table) => table.querySelector("tr").outerHTML;
  const time = (iso) => iso.replace("T", " ").slice(5, 16);

  async function load() {
    try {
      const [callbacks, calls] = await Promise.all([
        api("GET", "/api/callbacks?mode=person&state=pending&state=calling&state=unreachable"),
        api("GET", "/api/missed-calls"),
      ]);
      const unreachable = await api("GET", "/api/callbacks?mode=auto&state=unreachable");
      manual.innerHTML = header(manual) + [...callbacks, ...unreachable].map((c) =>
        `<tr data-callback="${c.id}"><td><a href="/tickets/${escape(c.ticket_number)}" target="_blank">${escape(c.ticket_number)}</a></td>` +
        `<td class="mono">${escape(c.phone || "—")}</td><td>${escape(c.state_label)}</td><td>${c.attempts}</td>` +
        `<td class="nowrap"><button type="button" data-dial-callback="${c.id}">拨打</button> ` +
        `<button type="button" data-enter-callback="${c.id}" data-number="${escape(c.ticket_number)}">录入结果</button></td></tr>`).join("") +
        (callbacks.length + unreachable.length ? "" : '<tr><td colspan="5" class="muted">无</td></tr>');
      missed.innerHTML = header(missed) + calls.map((m) =>
        `<tr data-missed="${escape(m.uid)}"><td>${time(m.offered_at)}</td><td class="mono">${escape(m.caller)}</td>` +
        `<td>${escape(m.outcome_label)}</td><td class="nowrap"><button type="button" data-dial-missed="${escape(m.uid)}">回拨</button> ` +
        `<button type="button" data-enter-missed="${escape(m.uid)}" data-caller="${escape(m.caller)}">记录</button></td></tr>`).join("") +
        (calls.length ? "" : '<tr><td colspan="4" class="muted">无</td></tr>');
    } catch (error) {
      toast(error.message, "error");
    }
  }

  function openCallback(id, number) {
    current = { kind: "callback", id };
    missedForm.hidden = true;
    resultForm.hidden = false;
    showError(resultForm, "");
    document.getElementById("callback-result-title").textContent = `回访 ${number}：`;
  }

  function openMissed(uid, caller) {
    current = { kind: "missed", id: uid };
    resultForm.hidden = true;
    missedForm.hidden = false;
    showError(missedForm, "");
    document.getElementById("missed-result-title").textContent = `回拨 ${caller}：`;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    try {
      if (button.dataset.dialCallback) {
        const row = button.closest("tr");
        const placed = await api("POST", `/api/callbacks/${button.dataset.dialCallback}/dial`);
        toast(placed.call_uid ? `正在呼叫 ${placed.phone}，接通后您的话机将振铃` : `请用坐席电话拨打 ${placed.phone}`, "ok");
        openCallback(button.dataset.dialCallback, row.querySelector("a").textContent);
      } else if (button.dataset.enterCallback) {
        openCallback(button.dataset.enterCallback, button.dataset.number);
      } else if (button.dataset.dialMissed) {
        const placed = await api("POST", `/api/missed-calls/${button.dataset.dialMissed}/dial`);
        toast(placed.call_uid ? `正在回拨 ${placed.caller}` : `请用坐席电话拨打 ${placed.caller}`, "ok");
        openMissed(button.dataset.dialMissed, placed.caller);
      } else if (button.dataset.enterMissed) {
        openMissed(button.dataset.enterMissed, button.dataset.caller);
      } else if (button.id === "callbacks-refresh") {
        load();
      }
    } catch (error) {
      toast(error.message, "error");
    }
  });

  async function save(event, form, url, body) {
    event.preventDefault();
    showError(form, "");
    try {
      await api("POST", url, body);
      toast("已保存", "ok");
      form.hidden = true;
      form.reset();
      current = null;
      load();
    } catch (error) {
      showError(form, error.message);  // what was chosen stays in the form
    }
  }

  // A form without a chosen row says so instead of failing (it is hidden until a row is chosen).
  function chosen(event, form, kind) {
    if (current && current.kind === kind) return true;
    event.preventDefault();
    showError(form, kind === "callback" ? "请先在回访列表中点击「拨打」或「录入结果」选择一条回访" : "请先在未接来电列表中点击「回拨」或「记录」选择一个来电");
    return false;
  }

  resultForm.addEventListener("submit", (event) => {
    event.stopPropagation();
    if (!chosen(event, resultForm, "callback")) return;
    const body = { outcome: resultForm.outcome.value };
    if (resultForm.result.value) body.result = resultForm.result.value;
    if (resultForm.solved.value) body.solved = resultForm.solved.value === "true";
    if (resultForm.note.value.trim()) body.note = resultForm.note.value.trim();
    save(event, resultForm, `/api/callbacks/${current.id}/result`, body);
  });
  missedForm.addEventListener("submit", (event) => {
    event.stopPropagation();
    if (!chosen(event, missedForm, "missed")) return;
    const body = { outcome: missedForm.outcome.value };
    if (missedForm.note.value.trim()) body.note = missedForm.note.value.trim();
    save(event, missedForm, `/api/missed-calls/${encodeURIComponent(current.id)}/outcome`, body);
  });
  load();
})();
