// Progressive enhancement only: every page works without this script.
// Buttons with data-confirm ask before submitting their form.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset ? button.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
