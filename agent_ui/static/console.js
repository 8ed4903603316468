/* Seat console: seat state, screen pop, transcript, knowledge-base suggestions, the ticket form. */
"use strict";

(() => {
  const C = window.CONSOLE;
  const $ = (id) => document.getElementById(id);
  const form = $("ticket-form");
  let suggestions = [];
  let touched = { subcategory: false, department: false };
  let transcript = "";
  let triageTimer = null;

  /* ---- seat state ------------------------------------------------------------------------- */
  const STATE_LABELS = { ready: "空闲", break: "小休", wrap_up: "话后处理", talking: "通话中", ringing: "振铃", logged_out: "未签入" };

  async function setSeatState(state, extension = C.extension) {
    if (!extension) { Hotline.toast("请先签入坐席", "warn"); return; }
    try {
      await Hotline.api("POST", `/api/seats/${extension}/state`, { state });
      if (!C.extension || state === "logged_out") window.location.reload();
      else showSeat(state, new Date().toISOString());
    } catch (error) { Hotline.toast(error.message, "error"); }
  }
  function showSeat(state, since) {
    const badge = $("seat-state");
    if (!badge) return;
    badge.className = `seat-state ${state}`;
    badge.textContent = STATE_LABELS[state] || state;
    $("seat-timer").dataset.since = since;
  }
  // The seat phone's registration, refreshed while the page is open (就绪 is refused without it).
  async function showPhone() {
    const badge = $("phone-state");
    if (!badge || !C.extension) return;
    try {
      const phone = await Hotline.api("GET", `/api/seats/${C.extension}/phone`);
      badge.textContent = phone.label;
      badge.className = `phone-state ${phone.registered === true ? "ok" : phone.registered === false ? "bad" : ""}`;
    } catch (error) { /* the next refresh tries again */ }
  }
  setInterval(showPhone, 10000);
  document.querySelectorAll("[data-seat-state]").forEach((b) => b.addEventListener("click", () => setSeatState(b.dataset.seatState)));
  if ($("sign-in")) $("sign-in").addEventListener("click", () => setSeatState("ready", $("seat-choice").value));

  /* ---- call events -------------------------------------------------------------------------- */
  function setCall(uid) {
    C.callUid = uid;
    const enabled = Boolean(uid);
    document.querySelectorAll("[data-transfer], #btn-conference").forEach((b) => { b.disabled = !enabled; });
  }
  setCall(C.callUid);

  Hotline.on("sla.hotspot", (p) => {
    const banner = document.getElementById("hotspot-banner");
    const title = document.createElement("span");
    title.className = "hotspot-title";
    title.textContent = p.title || "";
    document.getElementById("hotspot-titles").prepend(title);
    banner.hidden = false;
    Hotline.toast(`热点预警：${p.title || ""}`, "warn");
  });
  Hotline.on("call.offered", (p) => {
    if (p.extension !== C.extension) return;
    setCall(p.call_uid);
    $("call-card").classList.add("popup");
    $("call-status").textContent = "来电振铃";
    $("caller").textContent = p.caller || p.caller_masked || "未知号码";
    $("caller_phone").value = p.caller || "";
    const list = (p.earlier_tickets || []).map((t) =>
      `<li><a href="/tickets/${Hotline.escape(t.number)}" target="_blank">${Hotline.escape(t.number)}</a> ` +
      `<span class="muted">${Hotline.escape(Hotline.shortTime(t.created_at))}</span> ` +
      `<span class="state-badge">${Hotline.escape(t.state_label || t.state)}</span> ${Hotline.escape(t.content)}</li>`);
    $("earlier").innerHTML = list.join("") || '<li class="muted">无历史工单</li>';
    transcript = "";
    $("transcript").textContent = "";
    Hotline.toast(`来电：${p.caller_masked || p.caller}`, "warn");
    if (p.opening) useOpening(p.opening);  // said while waiting in the queue
  });
  Hotline.on("call.answered", (p) => {
    if (p.call_uid !== C.callUid) return;
    $("call-status").textContent = "通话中";
    showSeat("talking", new Date().toISOString());
  });
  Hotline.on("call.ended", (p) => {
    if (p.call_uid !== C.callUid) return;
    $("call-status").textContent = "通话已结束";
    $("call-card").classList.remove("popup");
    setCall(null);
    // no guess at the seat's state here: the server's "seat" event came first, and a call that rang
    // this seat unanswered (it went back to the queue) leaves the seat on 小休, not in 话后处理
  });
  Hotline.on("seat", (p) => { if (p.extension === C.extension) showSeat(p.state, p.state_since ? new Date().toISOString() : ""); });
  // 最长等待 counts up between queue events: the server says how long at that moment.
  const wait = { seconds: Number($("queue-wait").textContent) || 0, at: Date.now(), length: Number($("queue-length").textContent) || 0 };
  function showWait() {
    const seconds = wait.length ? wait.seconds + (Date.now() - wait.at) / 1000 : 0;
    $("queue-wait").textContent = Math.round(seconds);
  }
  Hotline.on("queue", (p) => {
    $("queue-length").textContent = p.length;
    Object.assign(wait, { seconds: p.longest_wait_seconds || 0, at: Date.now(), length: p.length || 0 });
    showWait();
  });
  setInterval(showWait, 1000);
  Hotline.on("transcript.partial", (p) => {
    if (p.call_uid !== C.callUid) return;
    transcript = `${transcript}${p.text}`;
    $("transcript").textContent = transcript;
    $("transcript").scrollTop = $("transcript").scrollHeight;
    const content = $("content");
    // Whisper's opening statement reads better than the live partials: it stays once it came.
    if (!content.dataset.typed && !content.dataset.opening) { content.value = transcript; scheduleTriage(); }
  });
  // The caller's opening statement (智能填单), transcribed as soon as they paused: into 诉求内容 unless
  // the operator has typed there already; the triage follows as if it had been typed.
  Hotline.on("transcript.opening", (p) => { if (p.call_uid === C.callUid) useOpening(p); });
  function useOpening(p) {
    if (!p.text) return;
    if (!transcript) { transcript = p.text; $("transcript").textContent = transcript; }
    const content = $("content");
    if (content.dataset.opening && content.value === p.text) return;  // the same statement again
    if (!content.dataset.typed) {
      content.value = p.text;
      content.dataset.opening = "1";
      scheduleTriage();
      Hotline.toast("已按来电人开场陈述自动填写诉求内容，请核对", "info");
    }
  }
  // The recogniser's suggestions for the call trigger the same triage as typing: one list, one confidence.
  Hotline.on("kb.suggestions", (p) => { if (p.call_uid === C.callUid && $("content").value.trim()) scheduleTriage(); });

  /* ---- triage: category, department, deadline and answers for what the caller said --------- */
  function scheduleTriage() {
    clearTimeout(triageTimer);
    triageTimer = setTimeout(runTriage, 500);
  }
  async function runTriage() {
    const text = $("content").value.trim();
    if (!text) return;
    try {
      const t = await Hotline.api("GET", `/api/triage?text=${encodeURIComponent(text)}`);
      showTriage(t);
      showSuggestions(t.suggestions, t);
    } catch (error) { Hotline.toast(error.message, "error"); }
    showDuplicates(text);
  }

  /* ---- duplicates: the same matter already registered in the same place (附加来电) ---------- */
  let duplicates = [];
  async function showDuplicates(text) {
    const params = new URLSearchParams({ text });
    const address = $("address").value.trim(), phone = $("caller_phone").value.trim();
    if (address) params.set("address", address);
    if (/^\+?[0-9][0-9-]{2,19}$/.test(phone)) params.set("phone", phone);
    try { duplicates = await Hotline.api("GET", `/api/duplicates?${params}`); }
    catch (error) { duplicates = []; }  // the triage above already says what went wrong
    const box = $("duplicates");
    box.hidden = !duplicates.length;
    box.innerHTML = duplicates.map((d, i) => `<div class="duplicate${d.repeat ? " repeat" : ""}" data-number="${Hotline.escape(d.number)}">
        <b>${Hotline.escape(d.summary)}</b>
        <span class="muted small">${Hotline.escape(d.place || "")} · ${Hotline.escape(Hotline.shortTime(d.created_at))} · ${Hotline.escape(d.state_label)}</span>
        <div class="small">${Hotline.escape(d.content)}</div>
        <button type="button" class="warn" data-link="${i}">作为附加来电关联${i === 0 ? "<kbd>F6</kbd>" : ""}</button>
      </div>`).join("");
  }
  $("duplicates").addEventListener("click", (e) => { const b = e.target.closest("[data-link]"); if (b) linkCaller(Number(b.dataset.link)); });
  async function linkCaller(index) {
    const d = duplicates[index];
    if (!d) { Hotline.toast("没有可关联的重复工单", "warn"); return; }
    const { body } = ticketBody();
    if (!body.content) { Hotline.showError(form, "请先记录来电人的诉求内容"); $("content").focus(); return; }
    const request = { content: body.content };
    if (body.caller_phone) request.caller_phone = body.caller_phone;
    if (body.caller_name) request.caller_name = body.caller_name;
    if (C.callUid) request.call_uid = C.callUid;
    try {
      const t = await Hotline.api("POST", `/api/tickets/${d.number}/add_caller`, request);
      Hotline.toast(`已作为附加来电关联至工单 ${t.number}（共 ${t.extra_callers.length + 1} 位来电人）`, "ok");
      if (C.callUid) {
        Hotline.api("POST", `/api/calls/${C.callUid}/ticket`, { number: t.number })
          .catch((error) => Hotline.toast(`通话未能关联工单：${error.message}`, "warn"));
      }
      addMine(t, "附加来电");
      clearForm({ keepCaller: Boolean(C.callUid) });
    } catch (error) {
      Hotline.showError(form, error.message);  // everything typed stays
    }
  }
  function showTriage(t) {
    const box = $("triage");
    box.classList.toggle("emergency", t.emergency);
    let html;
    if (t.transfer) html = `⚠ 紧急：建议立即转 <b>${t.transfer}</b>`;
    else if (t.on_the_spot) html = `建议：<b>简单咨询，直接答复</b>（知识库 ${Hotline.escape(t.kb_entry_id)}）`;
    else {
      html = `建议：<b>${Hotline.escape(t.category)}${t.subcategory ? " / " + Hotline.escape(t.subcategory) : ""}</b>`;
      if (t.department_name) html += ` → ${Hotline.escape(t.department_name)}`;
      if (t.deadline_days != null) html += `，时限 ${t.deadline_days} 个工作日（截至 ${t.deadline ? t.deadline.replace("T", " ").slice(0, 16) : "—"}）`;
    }
    html += ` <span class="score">置信度 ${Math.round(t.confidence * 100)}%</span>`;
    // The model suspects an emergency that no rule confirmed: ask rather than stay silent.
    if (t.confirm_emergency && dismissedAlarm !== $("content").value.trim()) {
      const to = t.confirm_emergency.replace("转", "");
      html += `<div class="confirm-emergency" id="confirm-emergency">⚠ 可能是紧急情况：<b>${Hotline.escape(t.confirm_emergency)}</b>？
        <button type="button" class="danger" data-alarm-yes="${Hotline.escape(to)}">是</button>
        <button type="button" data-alarm-no>否</button></div>`;
      box.classList.add("emergency");
    }
    box.innerHTML = html;
    if (t.subcategory_id && !touched.subcategory) { $("subcategory").value = String(t.subcategory_id); showDeadline(); }
    if (t.department && !touched.department) $("department").value = t.department;
    if (t.transfer) document.querySelector(`[data-transfer="${t.transfer}"]`)?.focus();
  }
  let dismissedAlarm = null;
  $("triage").addEventListener("click", (e) => {
    const yes = e.target.closest("[data-alarm-yes]");
    const no = e.target.closest("[data-alarm-no]");
    if (yes) {
      const button = document.querySelector(`[data-transfer="${yes.dataset.alarmYes}"]`);
      if (button && !button.disabled) button.click();
      else if (button) { button.focus(); Hotline.toast(`请立即转 ${yes.dataset.alarmYes}（当前无通话可转接）`, "error"); }
      else Hotline.toast("请按应急处突登记并立即派督办中心", "error");
    }
    if (no) {
      dismissedAlarm = $("content").value.trim();
      $("confirm-emergency")?.remove();
      $("triage").classList.remove("emergency");
    }
  });
  function showSuggestions(hits, t) {
    suggestions = hits;
    // Only the entry the triage chose may be read out as it is; every other hit is checked first.
    const readable = (h) => t.on_the_spot && t.answer_confident && h.id === t.kb_entry_id;
    const box = $("suggestions");
    if (!hits.length) { box.innerHTML = '<p class="muted">知识库中没有匹配的答复</p>'; return; }
    box.innerHTML = hits.map((h, i) => `
      <div class="suggestion" data-index="${i}" data-id="${Hotline.escape(h.id)}">
        <div class="q">${i + 1}. ${Hotline.escape(h.question)} <span class="score">${readable(h) ? "可直接宣读" : "请核对"} · ${Math.round(h.score * 100)}%</span></div>
        <div class="a">${Hotline.escape(h.answer)}</div>
        <button type="button" class="ok" data-use="${i}">采用此答复<kbd>Alt+${i + 1}</kbd></button>
      </div>`).join("");
  }
  function useSuggestion(index) {
    const hit = suggestions[index];
    if (!hit) return;
    $("answer").value = hit.answer;
    $("kb_entry_id").value = hit.id;
    document.querySelectorAll(".suggestion").forEach((el) => el.classList.toggle("chosen", Number(el.dataset.index) === index));
    Hotline.toast("已采用知识库答复，请宣读后点击「直接答复办结」", "ok");
  }
  $("suggestions").addEventListener("click", (e) => { const b = e.target.closest("[data-use]"); if (b) useSuggestion(Number(b.dataset.use)); });

  async function showDeadline() {
    const id = $("subcategory").value;
    if (!id) { $("deadline").value = ""; return; }
    const option = $("subcategory").selectedOptions[0];
    if (!touched.department && option.dataset.department) $("department").value = option.dataset.department;
    try {
      const d = await Hotline.api("GET", `/api/deadline?subcategory_id=${id}`);
      $("deadline").value = d.deadline ? `${d.deadline_days} 个工作日，至 ${d.deadline.replace("T", " ").slice(0, 16)}` : "直接答复";
    } catch (error) { $("deadline").value = error.message; }
  }
  $("content").addEventListener("input", () => { $("content").dataset.typed = "1"; scheduleTriage(); });
  $("subcategory").addEventListener("change", () => { touched.subcategory = true; showDeadline(); });
  $("department").addEventListener("change", () => { touched.department = true; });

  /* ---- submitting: one request registers the ticket and answers or dispatches it ------------ */
  function ticketBody() {
    const body = Hotline.formBody(form);
    const ticket = { content: body.content || "", channel: "phone" };
    for (const key of ["caller_phone", "caller_name", "address"]) if (body[key]) ticket[key] = body[key];
    ticket.disclosure_consent = Boolean(body.disclosure_consent);  // asked on the phone
    return { body, ticket };
  }
  async function submit(kind) {
    const { body, ticket } = ticketBody();
    const request = { ticket };
    if (kind === "answer") {
      if (!body.answer) { Hotline.showError(form, "请填写答复内容，或从左侧知识库建议中采用一条"); $("answer").focus(); return; }
      request.answer_on_spot = { answer: body.answer };
      if (body.kb_entry_id) request.answer_on_spot.kb_entry_id = body.kb_entry_id;
    } else if (kind === "dispatch") {
      if (!body.subcategory_id || !body.department) { Hotline.showError(form, "派单前请选择小类和承办部门"); return; }
      request.dispatch = { subcategory_id: Number(body.subcategory_id), department: body.department };
    }
    Hotline.showError(form, "");
    try {
      const t = await Hotline.api("POST", "/api/console/tickets", request);
      const what = { answer: "已直接答复办结", dispatch: `已派至 ${t.lead_department ? t.lead_department.name : ""}`, register: "已登记" }[kind];
      Hotline.toast(`工单 ${t.number} ${what}`, "ok");
      if (C.callUid) {  // the call record keeps the ticket it became (recording and transcript follow it)
        Hotline.api("POST", `/api/calls/${C.callUid}/ticket`, { number: t.number })
          .catch((error) => Hotline.toast(`通话未能关联工单：${error.message}`, "warn"));
      }
      addMine(t, what);
      clearForm({ keepCaller: Boolean(C.callUid) });
    } catch (error) {
      Hotline.showError(form, error.message);  // everything typed stays
    }
  }
  function addMine(t, what) {
    const row = document.createElement("tr");
    row.innerHTML = `<td><a href="/tickets/${t.number}" target="_blank">${t.number}</a></td><td>${Hotline.escape(what)}</td><td><span class="clip" style="max-width:380px">${Hotline.escape(t.content)}</span></td><td>${t.created_at.slice(11, 16)}</td>`;
    $("my-tickets").querySelector("tr").after(row);
  }
  function clearForm({ keepCaller = false } = {}) {
    const caller = $("caller_phone").value;
    form.reset();  // consent included: each matter is asked again
    if (keepCaller) $("caller_phone").value = caller;  // the call goes on: a second matter, same caller
    delete $("content").dataset.typed;
    delete $("content").dataset.opening;
    touched = { subcategory: false, department: false };
    $("kb_entry_id").value = "";
    $("triage").innerHTML = '<span class="muted">系统建议：等待输入诉求</span>';
    $("triage").classList.remove("emergency");
    $("suggestions").innerHTML = '<p class="muted">输入或转写诉求后自动匹配</p>';
    suggestions = [];
    duplicates = [];
    $("duplicates").hidden = true;
    $("duplicates").innerHTML = "";
    Hotline.showError(form, "");
    $("content").focus();
  }
  $("btn-answer").addEventListener("click", () => submit("answer"));
  $("btn-dispatch").addEventListener("click", () => submit("dispatch"));
  $("btn-register").addEventListener("click", () => submit("register"));
  $("btn-clear").addEventListener("click", () => clearForm({ keepCaller: Boolean(C.callUid) }));

  /* ---- call control ------------------------------------------------------------------------- */
  document.querySelectorAll("[data-transfer]").forEach((b) => b.addEventListener("click", async () => {
    if (!C.callUid || !window.confirm(`确定将来电转接至 ${b.dataset.transfer}？`)) return;
    try {
      await Hotline.api("POST", `/api/calls/${C.callUid}/transfer`, { target: b.dataset.transfer });
      Hotline.toast(`已转接 ${b.dataset.transfer}`, "ok");
      if (b.dataset.transfer === "110") recordPoliceHandover(C.callUid);
    } catch (error) { Hotline.toast(error.message, "error"); }
  }));
  // 110联动: what was handed to 110 is recorded against the call's transfer (the form's text as summary).
  async function recordPoliceHandover(uid) {
    const summary = $("content").value.trim() || "坐席转接110";
    try { await Hotline.api("POST", `/api/calls/${uid}/police-handover`, { summary }); }
    catch (error) { Hotline.toast(`转110移交记录未保存：${error.message}`, "warn"); }
  }
  $("conf-department").addEventListener("change", (e) => { $("conf-number").value = C.departmentPhones[e.target.value] || ""; });
  $("btn-conference").addEventListener("click", async () => {
    const number = $("conf-number").value.trim();
    if (!number) { Hotline.toast("请选择部门或输入号码", "warn"); return; }
    try {
      await Hotline.api("POST", `/api/calls/${C.callUid}/conference`, { number });
      Hotline.toast(`正在呼叫 ${number} 加入三方通话`, "ok");
    } catch (error) { Hotline.toast(error.message, "error"); }
  });

  /* ---- keyboard shortcuts ------------------------------------------------------------------ */
  const KEYS = {
    F2: () => setSeatState("ready"),
    F3: () => setSeatState("break"),
    F4: runTriage,
    F6: () => linkCaller(0),
    F8: () => submit("answer"),
    F9: () => submit("dispatch"),
    Escape: () => clearForm({ keepCaller: Boolean(C.callUid) }),
  };
  document.addEventListener("keydown", (e) => {
    if (e.altKey && ["1", "2", "3"].includes(e.key)) { e.preventDefault(); useSuggestion(Number(e.key) - 1); return; }
    const action = KEYS[e.key];
    if (action && !e.ctrlKey && !e.metaKey) { e.preventDefault(); action(); }
  });
})();
