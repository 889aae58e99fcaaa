/**
 * The status page served at `/`: the cluster live, from `/cluster/events` (Server-Sent
 * Events, one status a second). If the node serving the page goes away, the page moves
 * its stream to another member it learned of, so a leader kill stays visible.
 */
export function dashboardHtml(nodeId: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quorate — cluster</title>
<style>
  :root { --bg:#0f1419; --panel:#182028; --text:#e6edf3; --muted:#8b98a5; --leader:#3fb950; --follower:#58a6ff; --candidate:#d29922; --down:#f85149; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; background:var(--bg); color:var(--text); }
  header { padding:16px 24px; display:flex; gap:16px; align-items:baseline; border-bottom:1px solid #263040; }
  header h1 { margin:0; font-size:18px; } header .sub { color:var(--muted); }
  main { padding:16px 24px; display:grid; gap:16px; grid-template-columns: minmax(0,2fr) minmax(0,1fr); }
  section { background:var(--panel); border-radius:8px; padding:12px 16px; }
  h2 { margin:0 0 8px; font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid #263040; }
  th { color:var(--muted); font-weight:500; }
  .role { font-weight:600; padding:2px 8px; border-radius:10px; font-size:12px; }
  .role.leader { background:var(--leader); color:#04120a; }
  .role.follower { background:var(--follower); color:#031224; }
  .role.candidate, .role.precandidate { background:var(--candidate); color:#1c1400; }
  .role.unreachable, .role.unknown { background:var(--down); color:#210403; }
  #events { list-style:none; margin:0; padding:0; max-height:360px; overflow:auto; }
  #events li { padding:4px 0; border-bottom:1px solid #263040; color:var(--muted); }
  #events li b { color:var(--text); }
  #stream { color:var(--muted); }
  canvas { width:100%; height:120px; }
  .big { font-size:28px; font-weight:700; }
</style>
</head>
<body>
<header><h1>quorate</h1><span class="sub">cluster status — served by <span id="served">${nodeId}</span></span>
  <span id="stream" class="sub">connecting…</span></header>
<main>
  <section style="grid-column: 1 / -1">
    <h2>Leader</h2>
    <div class="big"><span id="leader" data-leader="">—</span> <span class="sub" id="term"></span></div>
  </section>
  <section>
    <h2>Members</h2>
    <table id="members"><thead><tr><th>node</th><th>role</th><th>term</th><th>commit</th><th>applied</th><th>match</th><th>lag</th><th>healthy</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Leader changes</h2>
    <ul id="events"></ul>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Commit index</h2>
    <canvas id="chart" width="1200" height="120"></canvas>
  </section>
</main>
<script>
(() => {
  // With an API token, the page is opened as /?token=…; the stream needs it too.
  const token = new URLSearchParams(location.search).get('token');
  const auth = token ? '?token=' + encodeURIComponent(token) : '';
  const known = new Set([location.origin]);
  let current = location.origin;
  let lastLeader = null;
  const points = [];
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  function render(st) {
    const c = st.cluster;
    for (const m of c.members) if (m.clientAddress) known.add(m.clientAddress);
    const leader = c.members.find((m) => m.role === 'leader') ? c.leaderId : null;
    $('leader').textContent = leader || 'no leader';
    $('leader').dataset.leader = leader || '';
    $('term').textContent = 'term ' + c.term;
    $('served').textContent = st.health.nodeId;
    const rows = c.members.map((m) => '<tr data-node="' + esc(m.id) + '" data-role="' + esc(m.role) + '">' +
      '<td>' + esc(m.id) + '</td><td><span class="role ' + esc(m.role) + '">' + esc(m.role) + '</span></td>' +
      '<td>' + (m.term ?? '') + '</td><td>' + (m.commitIndex ?? '') + '</td><td>' + (m.appliedIndex ?? '') + '</td>' +
      '<td>' + (m.matchIndex ?? '') + '</td><td>' + (m.lag ?? '') + '</td><td>' + (m.healthy ? 'yes' : 'no') + '</td></tr>').join('');
    $('members').tBodies[0].innerHTML = rows;
    if (leader !== lastLeader) {
      const li = document.createElement('li');
      li.innerHTML = new Date(st.at).toLocaleTimeString() + ' — leader <b>' + esc(leader || 'none') + '</b> (term ' + c.term + ')';
      $('events').prepend(li);
      lastLeader = leader;
    }
    points.push(st.health.commitIndex);
    if (points.length > 300) points.shift();
    draw();
  }
  function draw() {
    const cv = $('chart'); const g = cv.getContext('2d');
    g.clearRect(0, 0, cv.width, cv.height);
    if (points.length < 2) return;
    const min = Math.min(...points), max = Math.max(...points) || 1;
    g.strokeStyle = '#58a6ff'; g.lineWidth = 2; g.beginPath();
    points.forEach((p, i) => {
      const x = (i / (points.length - 1)) * cv.width;
      const y = cv.height - ((p - min) / Math.max(1, max - min)) * (cv.height - 10) - 5;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
  function connect() {
    const es = new EventSource(current + '/cluster/events' + auth);
    let alive = false;
    es.addEventListener('status', (ev) => { alive = true; $('stream').textContent = 'live from ' + current; render(JSON.parse(ev.data)); });
    es.onerror = () => {
      es.close();
      $('stream').textContent = 'lost ' + current + ', trying another member…';
      const others = [...known].filter((a) => a !== current);
      if (!alive && others.length === 0) { setTimeout(connect, 1000); return; }
      current = others.length ? others[Math.floor(Math.random() * others.length)] : current;
      setTimeout(connect, 300);
    };
  }
  connect();
})();
</script>
</body>
</html>`;
}
