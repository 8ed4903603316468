/* Supervisor dashboard: the wallboard and queue follow live events; new warnings pop up. */
"use strict";

(() => {
  const LABELS = { ready: "空闲", break: "小休", wrap_up: "话后处理", talking: "通话中", ringing: "振铃", logged_out: "未签入" };
  Hotline.on("seat", (p) => {
    const card = document.querySelector(`.seat[data-extension="${p.extension}"]`);
    if (!card) return;
    card.className = `seat ${p.state}`;
    card.querySelector(".state-label").textContent = p.state_label || LABELS[p.state] || p.state;
    card.querySelector(".timer").dataset.since = new Date().toISOString();
    if (p.state !== "talking" && p.state !== "ringing") card.querySelector(".caller").textContent = "";
  });
  Hotline.on("call.offered", (p) => {
    const card = document.querySelector(`.seat[data-extension="${p.extension}"]`);
    if (card) card.querySelector(".caller").textContent = p.caller_masked || "";
  });
  Hotline.on("queue", (p) => {
    document.getElementById("queue-length").textContent = p.length;
    document.getElementById("queue-wait").textContent = Math.round(p.longest_wait_seconds || 0);
  });
  Hotline.on("sla.hotspot", (p) => {
    Hotline.toast(`热点预警：${p.title || ""}`, "warn");
    document.getElementById("hotspot-new").hidden = false;
  });
  Hotline.on("sla.warning", (p) => Hotline.toast(`督办提醒：${p.ticket || ""} ${p.message || ""}`, "warn"));
  Hotline.on("ticket.reply", (p) => Hotline.toast(`工单 ${p.number} 已答复（${p.department_name || ""}）`, "ok"));
  Hotline.on("ticket.return", (p) => Hotline.toast(`工单 ${p.number} 被退单，请处理`, "warn"));
  Hotline.on("ticket.request_extension", (p) => Hotline.toast(`工单 ${p.number} 申请延期，请审批`, "warn"));
  /* The figures come from the database: refresh them every minute without losing the place. */
  setInterval(() => { if (!document.hidden) window.location.reload(); }, 60000);
})();
