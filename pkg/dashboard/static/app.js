// Sluice dashboard: swaps in the fragments of the page's one live stream,
// and posts the actions with the page's token.
(() => {
  const token = document.querySelector('meta[name="sluice-token"]').content;
  const dialog = document.getElementById('confirm');
  const result = document.getElementById('result');
  const live = document.body.dataset.live;
  if (live) {
    const stream = new EventSource(live);
    stream.addEventListener('swap', (e) => swap(e.data));
    stream.addEventListener('remove', (e) => document.getElementById(e.data)?.remove());
    stream.addEventListener('only', (e) => {
      const keep = new Set(JSON.parse(e.data));
      document.querySelectorAll('[data-row]').forEach((row) => keep.has(row.id) || row.remove());
    });
    stream.addEventListener('fail', (e) => {
      stream.close();
      result.className = 'error';
      result.textContent = 'Live updates stopped: ' + e.data;
    });
  }
  // swap replaces the element with the fragment's id; a row that is new
  // joins the overview's table.
  function swap(html) {
    const t = document.createElement('template');
    t.innerHTML = html;
    const next = t.content.firstElementChild;
    if (!next) return;
    const old = document.getElementById(next.id);
    if (old) old.replaceWith(next);
    else if (next.hasAttribute('data-row')) document.getElementById('rows')?.append(next);
  }
  document.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-post]');
    if (!button) return;
    if (!button.dataset.confirm) return post(button);
    dialog.querySelector('p').textContent = button.dataset.confirm;
    dialog.returnValue = '';
    dialog.onclose = () => dialog.returnValue === 'ok' && post(button);
    dialog.showModal();
  });
  async function post(button) {
    result.className = 'busy';
    result.textContent = button.textContent + ': waiting for the operator…';
    try {
      const r = await fetch(button.dataset.post, { method: 'POST', headers: { 'X-Sluice-Token': token } });
      const body = await r.json();
      result.className = body.ok ? 'ok' : 'error';
      result.textContent = body.message;
    } catch (err) {
      result.className = 'error';
      result.textContent = button.textContent + ' failed: ' + err;
    }
  }
})();
