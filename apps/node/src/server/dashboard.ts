/**
 * The status page served at `/`: the cluster live, from `/cluster/events` (Server-Sent
 * Events, one status a second). The page follows the leader's stream (only the leader
 * knows every member's match index and lag); if that node goes away, it moves to another
 * member it learned of, so a leader kill stays visible. The commit chart starts with the
 * last two minutes the node kept, and leader changes carry the time the node saw them.
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
  canvas { width:100%; height:140px; display:block; }
  .chart { display:grid; grid-template-columns: auto minmax(0,1fr); gap:8px; }
  .yaxis { display:flex; flex-direction:column; justify-content:space-between; color:var(--muted); font-size:12px; text-align:right; min-width:4em; }
  .xaxis { display:flex; justify-content:space-between; color:var(--muted); font-size:12px; margin-left:calc(4em + 8px); }
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
  <section id="groups-section" hidden>
    <h2>Raft groups <span class="sub" id="groups-note"></span></h2>
    <table id="groups"><thead><tr><th>member</th><th>groups led</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Leader changes</h2>
    <ul id="events"></ul>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Partition sets <span class="sub" id="psets-note"></span></h2>
    <table id="psets"><thead><tr><th>set</th><th>partitions</th><th>leaderless</th><th>live members</th><th>partitions led per member</th></tr></thead><tbody></tbody></table>
  </section>
  <section style="grid-column: 1 / -1">
    <h2>Commit index <span class="sub" id="chart-rate"></span></h2>
    <div class="chart"><div class="yaxis"><span id="chart-max"></span><span id="chart-min"></span></div>
    <canvas id="chart" width="1200" height="140" data-points="0"></canvas></div>
    <div class="xaxis"><span id="chart-from"></span><span>now</span></div>
  </section>
</main>
<script>
(() => {
  // With an API token, the page is opened as /?token=…; the stream needs it too.
  const token = new URLSearchParams(location.search).get('token');
  const auth = token ? '?token=' + encodeURIComponent(token) : '';
  const known = new Set([location.origin]);
  let current = location.origin;
  let es = null;
  // Members this page could not stream from lately: not followed again for a while.
  const failedAt = new Map();
  const SPAN = 120000;
  let points = [];
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const cell = (v) => (v === null || v === undefined ? '—' : v);
  function render(st) {
    const c = st.cluster;
    for (const m of c.members) if (m.clientAddress) known.add(m.clientAddress);
    const leader = c.members.find((m) => m.role === 'leader') ? c.leaderId : null;
    $('leader').textContent = leader || 'no leader';
    $('leader').dataset.leader = leader || '';
    $('term').textContent = 'term ' + c.term;
    const rows = c.members.map((m) => '<tr data-node="' + esc(m.id) + '" data-role="' + esc(m.role) + '">' +
      '<td>' + esc(m.id) + '</td><td><span class="role ' + esc(m.role) + '">' + esc(m.role) + '</span></td>' +
      '<td>' + cell(m.term) + '</td><td>' + cell(m.commitIndex) + '</td><td>' + cell(m.appliedIndex) + '</td>' +
      '<td class="match">' + cell(m.matchIndex) + '</td><td class="lag">' + cell(m.lag) + '</td><td>' + (m.healthy ? 'yes' : 'no') + '</td></tr>').join('');
    $('members').tBodies[0].innerHTML = rows;
    // A sharded cluster (docs/sharding.md): how many groups each member leads.
    if (c.groups) {
      $('groups-section').hidden = false;
      $('groups-note').textContent = c.groups.count + ' groups, ' + c.groups.leaderless + ' leaderless, ' + c.groups.quiesced + ' idle here';
      $('groups').tBodies[0].innerHTML = Object.entries(c.groups.leaders).map(([id, n]) =>
        '<tr data-member="' + esc(id) + '"><td>' + esc(id) + '</td><td>' + n + '</td></tr>').join('');
    }
    // Leader changes as the streaming node saw them, newest first, each at its own time.
    $('events').innerHTML = (st.leaders || []).slice().reverse().map((l) =>
      '<li data-at="' + l.at + '" data-leader="' + esc(l.leaderId || '') + '">' + new Date(l.at).toLocaleTimeString() +
      ' — ' + (l.leaderId ? 'leader <b>' + esc(l.leaderId) + '</b>' : '<b>no leader</b>') + ' (term ' + l.term + ')</li>').join('');
    if (st.commits) points = st.commits.slice();
    else points.push({ at: st.at, commit: st.health.commitIndex });
    const cutoff = st.at - SPAN;
    while (points.length > 1 && points[0].at < cutoff) points.shift();
    draw(st.at);
    // Only the leader knows every member's match index and lag: follow its stream.
    const addr = leader && leader !== st.health.nodeId ? (c.members.find((m) => m.id === leader) || {}).clientAddress : null;
    const recent = addr && failedAt.has(addr) && Date.now() - failedAt.get(addr) < 30000;
    if (addr && addr !== current && !recent && /^https?:/.test(addr)) { current = addr; connect(); }
  }
  function draw(now) {
    const cv = $('chart'); const g = cv.getContext('2d');
    const W = cv.width, H = cv.height;
    g.clearRect(0, 0, W, H);
    g.strokeStyle = '#263040'; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) { const y = 5 + (i / 4) * (H - 10); g.beginPath(); g.moveTo(0, y); g.lineTo(W, y); g.stroke(); }
    cv.dataset.points = String(points.length);
    $('chart-from').textContent = '−' + Math.round(SPAN / 1000) + ' s';
    if (points.length === 0) { $('chart-max').textContent = ''; $('chart-min').textContent = ''; return; }
    const vals = points.map((p) => p.commit);
    const min = Math.min(...vals), max = Math.max(...vals);
    $('chart-max').textContent = String(max);
    $('chart-min').textContent = String(min);
    const first = points[0], last = points[points.length - 1];
    const secs = (last.at - first.at) / 1000;
    $('chart-rate').textContent = secs > 0 ? '(' + Math.round((last.commit - first.commit) / secs) + ' entries/s)' : '';
    const x = (p) => ((p.at - (now - SPAN)) / SPAN) * W;
    const y = (p) => (max === min ? H / 2 : H - 5 - ((p.commit - min) / (max - min)) * (H - 10));
    g.strokeStyle = '#58a6ff'; g.fillStyle = '#58a6ff'; g.lineWidth = 2; g.beginPath();
    points.forEach((p, i) => (i ? g.lineTo(x(p), y(p)) : g.moveTo(x(p), y(p))));
    g.stroke();
    g.beginPath(); g.arc(x(last), y(last), 3, 0, 2 * Math.PI); g.fill();
  }
  function connect() {
    if (es) es.close();
    const mine = new EventSource(current + '/cluster/events' + auth);
    es = mine;
    let alive = false;
    mine.addEventListener('status', (ev) => {
      if (es !== mine) return;
      alive = true;
      $('stream').textContent = 'live from ' + current;
      render(JSON.parse(ev.data));
    });
    mine.onerror = () => {
      if (es !== mine) return;
      mine.close();
      if (!alive) failedAt.set(current, Date.now());
      $('stream').textContent = 'lost ' + current + ', trying another member…';
      const others = [...known].filter((a) => a !== current);
      if (!alive && others.length === 0) { setTimeout(connect, 1000); return; }
      current = others.length ? others[Math.floor(Math.random() * others.length)] : current;
      setTimeout(connect, 300);
    };
  }
  // Partition sets (docs/partitions.md), read every 2 s from the member being followed.
  async function partitions() {
    const opts = token ? { headers: { authorization: 'Bearer ' + token } } : {};
    try {
      const list = await (await fetch(current + '/partitions?stale=true', opts)).json();
      const sets = await Promise.all((list.sets || []).map(async (s) =>
        (await fetch(current + '/partitions/' + encodeURIComponent(s.name) + '?stale=true', opts)).json()));
      $('psets').tBodies[0].innerHTML = sets.map((s) => {
        const led = {};
        for (const m of s.members) led[m.id] = 0;
        let leaderless = 0;
        for (const p of s.partitions) { if (p.leader === null) leaderless++; else led[p.leader] = (led[p.leader] || 0) + 1; }
        const live = s.members.filter((m) => m.session !== null).length;
        return '<tr data-set="' + esc(s.name) + '" data-leaderless="' + leaderless + '" data-led="' + esc(JSON.stringify(led)) + '">' +
          '<td>' + esc(s.name) + '</td><td>' + s.partitions.length + '</td><td>' + leaderless + '</td><td>' + live + ' of ' + s.members.length + '</td><td>' +
          Object.entries(led).map(([m, n]) => esc(m) + ': <b>' + n + '</b>').join(' · ') + '</td></tr>';
      }).join('') || '<tr><td colspan="5" class="sub">none</td></tr>';
      $('psets-note').textContent = '';
    } catch (err) {
      $('psets-note').textContent = '(could not read them from ' + current + ')';
    }
  }
  draw(Date.now());
  connect();
  partitions();
  setInterval(partitions, 2000);
})();
</script>
</body>
</html>`;
}
