/* The browser's own messages for required fields and limits are in the browser's language: every
   form field says in Chinese what is wrong and what the limit is, on staff and citizens' pages. */
"use strict";

(() => {
  function labelOf(field) {
    const label = field.closest("label") || (field.id && document.querySelector(`label[for="${field.id}"]`));
    let own = "";
    if (label) {  // the label's words, without the fields inside it
      const copy = label.cloneNode(true);
      copy.querySelectorAll("input, textarea, select, button, .muted").forEach((e) => e.remove());
      own = copy.textContent;
    }
    const text = (field.dataset.label || own || field.getAttribute("placeholder") || "此项").trim();
    return text.replace(/\s+/g, " ").replace(/[：:*（(].*$/, "").trim() || "此项";
  }

  function message(field) {
    const v = field.validity;
    const name = labelOf(field);
    if (v.valueMissing) return field.tagName === "SELECT" ? `请选择${name}` : `请填写${name}`;
    if (v.tooShort) return `${name}至少 ${field.minLength} 个字（现在 ${field.value.length} 个）`;
    if (v.tooLong) return `${name}最多 ${field.maxLength} 个字（现在 ${field.value.length} 个）`;
    if (v.rangeUnderflow) return `${name}不能小于 ${field.min}`;
    if (v.rangeOverflow) return `${name}不能大于 ${field.max}`;
    if (v.stepMismatch) return `${name}须为整数`;
    if (v.typeMismatch) return field.type === "email" ? `${name}须为电子邮箱地址` : `${name}格式不正确`;
    if (v.badInput) return `${name}须为数字`;
    if (v.patternMismatch) return field.title ? `${name}：${field.title}` : `${name}格式不正确`;
    return "";
  }

  document.addEventListener("invalid", (event) => {
    const field = event.target;
    field.setCustomValidity("");
    if (!field.validity.valid) field.setCustomValidity(message(field));
  }, true);
  // A field that was refused is checked again as it is edited, so the message goes away when fixed.
  const recheck = (event) => {
    const field = event.target;
    if (field.setCustomValidity) { field.setCustomValidity(""); if (!field.validity.valid) field.setCustomValidity(message(field)); }
  };
  document.addEventListener("input", recheck, true);
  document.addEventListener("change", recheck, true);
})();
