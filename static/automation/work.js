// Tasks and tickets pages: a status picker saves as soon as it changes (the form still works without JS).
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}
