// The page of "tracemark ui". Every request carries the token of the
// page's own URL: as a header for fetch, in the query for EventSource and
// download links, where browsers cannot set headers. Text from processes
// is only ever set as text, never as HTML.
(function () {
  'use strict';
  const token = new URLSearchParams(location.search).get('token') || '';
  const $ = (id) => document.getElementById(id);

  // The test drives and reads the page through this object.
  const ui = window.tracemarkUI = { ticks: 0, ratePlot: null, histPlot: null, histUpdates: 0, histEvents: 0 };

  function withToken(path) {
    return path + (path.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  async function api(method, path, body) {
    const opts = { method, headers: { 'X-Tracemark-Token': token } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const err = new Error(data && data.error ? data.error.message : (text || resp.statusText));
      err.code = data && data.error ? data.error.code : '';
      throw err;
    }
    return data;
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function pidQuery() { return 'pid=' + encodeURIComponent(state.pid); }

  const state = { pid: '', markers: [], named: new Set(), live: null, hist: null, rates: null };

  function human(n) {
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + ' ' + u[i];
  }

  function since(t) {
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 120) return Math.round(s) + 's';
    if (s < 7200) return Math.round(s / 60) + 'm';
    return Math.round(s / 3600) + 'h';
  }

  const numericKinds = (k) => !['string', 'bytes', 'bool'].includes(k);

  // Processes.
  async function loadProcesses() {
    const procs = await api('GET', '/api/processes');
    const sel = $('process');
    const prev = state.pid;
    sel.replaceChildren(...procs.map((p) => el('option', { value: String(p.pid) },
      p.info ? `${p.pid} ${p.info.program}` : `${p.pid} (agent not answering)`)));
    if (procs.length === 0) {
      $('proc-info').textContent = 'no instrumented process of yours is running';
      return;
    }
    const keep = procs.find((p) => String(p.pid) === prev);
    selectProcess(keep ? prev : String(procs[0].pid));
  }

  function selectProcess(pid) {
    $('process').value = pid;
    if (pid === state.pid && state.live) return;
    state.pid = pid;
    state.markers = [];
    stopHist();
    connectLive();
    loadModules().catch(showModulesError);
  }

  // The live stream: process info, markers with rates, sessions, recordings.
  function connectLive() {
    if (state.live) state.live.close();
    state.rates = { times: [], series: new Map() };
    if (ui.ratePlot) { ui.ratePlot.destroy(); ui.ratePlot = null; }
    const es = new EventSource(withToken('/api/live?' + pidQuery()));
    state.live = es;
    es.addEventListener('tick', (ev) => {
      const t = JSON.parse(ev.data);
      ui.ticks++;
      setConn('live', 'live');
      showInfo(t.info);
      state.named = new Set((t.sessions.sessions || []).filter((x) => !x.ephemeral).map((x) => x.name));
      showMarkers(t.markers);
      showSessions(t.sessions);
      showRecordings(t.recordings);
      addRates(t);
    });
    es.addEventListener('agent_error', (ev) => {
      setConn('down', 'agent not answering: ' + JSON.parse(ev.data).message);
    });
    es.onerror = () => setConn('down', 'disconnected from tracemark ui; retrying');
  }

  function setConn(cls, text) {
    const c = $('conn');
    c.className = 'conn ' + cls;
    c.textContent = text;
  }

  function showInfo(info) {
    $('proc-info').textContent = `${info.program} · pid ${info.pid} · ${info.go_version} · ` +
      `${info.markers} markers, ${info.enabled} enabled · ${info.sessions} sessions · ` +
      `taint ${info.taint || '-'} · up ${since(info.started)}`;
  }

  function showMarkers(ms) {
    const namesChanged = ms.length !== state.markers.length || ms.some((m, i) => m.name !== state.markers[i].name);
    state.markers = ms;
    fill($('markers').querySelector('tbody'), ms.map((m) => {
      const stateCls = m.refused ? 'refused' : (m.enabled ? 'on' : '');
      return el('tr', { 'data-marker': m.name },
        el('td', { class: 'name', title: m.doc || m.location }, m.name),
        el('td', { class: 'fields' }, (m.fields || []).map((f) => f.name + ':' + f.kind).join(' ') || '-'),
        el('td', {}, m.module || '-'),
        el('td', {}, m.stability),
        el('td', { class: stateCls }, m.state),
        el('td', { class: 'num' }, m.events),
        rateCell(m),
        el('td', {}, el('button', { type: 'button', onclick: () => useMarker(m.name) }, 'use')));
    }));
    if (namesChanged) fillHistMarkers();
  }

  // rateCell shows a marker's rate; one recorded only by named sessions
  // that nobody reads has none (their events count once read).
  function rateCell(m) {
    const ss = m.sessions || [];
    if (m.enabled && m.rate <= 0 && ss.length > 0 && ss.every((n) => state.named.has(n))) {
      return el('td', { class: 'num muted', title: 'recorded by named sessions only: their events count once read; the rate plot shows the sessions' }, 'in session');
    }
    return el('td', { class: 'num' }, m.rate < 0 ? '…' : m.rate.toFixed(1));
  }

  // useMarker puts a marker's name into the forms.
  function useMarker(name) {
    $('enable-glob').value = name;
    $('record-glob').value = name;
    const hm = $('hist-marker');
    if ([...hm.options].some((o) => o.value === name)) {
      hm.value = name;
      fillHistFields();
    }
  }

  function showSessions(sl) {
    const named = (sl.sessions || []).filter((s) => !s.ephemeral);
    fill($('sessions').querySelector('tbody'), named.map((s) => el('tr', {},
      el('td', { class: 'name' }, s.name),
      el('td', {}, s.mode),
      el('td', {}, s.state),
      el('td', { class: 'fields' }, (s.rules || []).map((r) => r.pattern + (r.filter ? ` [${r.filter}]` : '')).join(', ')),
      el('td', { class: 'num' }, s.stats.recorded),
      el('td', { class: 'num' }, s.stats.discarded),
      el('td', { class: 'num' }, s.stats.filtered),
      el('td', {}, el('button', { type: 'button', onclick: () => destroySession(s.name) }, 'remove')))));
    const budget = sl.memory_budget ? ' of ' + human(sl.memory_budget) : '';
    $('memory').textContent = `recording memory in use: ${human(sl.memory_in_use || 0)}${budget}`;
  }

  // Enabling and disabling.
  function showEnableError(err) {
    const box = $('enable-error');
    box.textContent = err ? (err.code ? err.code + ': ' : '') + err.message : '';
    $('enable-filter').classList.toggle('bad', !!err && err.code === 'bad_filter');
  }

  function enableBody() {
    return {
      session: $('enable-session').value.trim(),
      glob: $('enable-glob').value.trim(),
      filter: $('enable-filter').value.trim(),
      mode: $('enable-mode').value,
    };
  }

  $('enable-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/enable?' + pidQuery(), enableBody());
      showEnableError(null);
    } catch (err) {
      showEnableError(err);
    }
  });

  $('disable-btn').addEventListener('click', async () => {
    const b = enableBody();
    try {
      await api('POST', '/api/disable?' + pidQuery(), { session: b.session, glob: b.glob });
      showEnableError(null);
    } catch (err) {
      showEnableError(err);
    }
  });

  async function destroySession(name) {
    try {
      await api('POST', '/api/disable?' + pidQuery(), { session: name, glob: '' });
      showEnableError(null);
    } catch (err) {
      showEnableError(err);
    }
  }

  // The rates plot: the busiest markers and sessions, one line each.
  // A marker's rate counts the events that were read (by recordings,
  // histograms, stats); a session's counts what it recorded, read or not.
  const palette = ['#2463b5', '#d9480f', '#2b8a3e', '#862e9c', '#c92a2a', '#0b7285', '#5f3dc4', '#e67700'];
  const maxSeries = 6, maxPoints = 120;

  function addRates(t) {
    const r = state.rates;
    const known = t.markers.filter((m) => m.rate >= 0).map((m) => ({ label: m.name, rate: m.rate }))
      .concat(t.session_rates.filter((s) => s.rate >= 0).map((s) => ({ label: 'session ' + s.session + ' (recorded)', rate: s.rate })));
    if (known.length === 0) return; // the first tick has no rate yet
    r.times.push(new Date(t.time).getTime() / 1000);
    const busiest = known.filter((k) => k.rate > 0).sort((a, b) => b.rate - a.rate);
    let rebuild = !ui.ratePlot;
    for (const k of busiest) {
      if (r.series.size >= maxSeries) break;
      if (!r.series.has(k.label)) {
        r.series.set(k.label, new Array(r.times.length - 1).fill(null));
        rebuild = true;
      }
    }
    const byLabel = new Map(known.map((k) => [k.label, k.rate]));
    for (const [label, vals] of r.series) vals.push(byLabel.has(label) ? byLabel.get(label) : null);
    if (r.times.length > maxPoints) {
      r.times.shift();
      for (const vals of r.series.values()) vals.shift();
    }
    const data = [r.times, ...r.series.values()];
    if (rebuild) {
      if (ui.ratePlot) ui.ratePlot.destroy();
      const series = [{}];
      let i = 0;
      for (const label of r.series.keys()) series.push({ label, stroke: palette[i++ % palette.length], width: 1.5 });
      ui.ratePlot = new uPlot({
        width: plotWidth('rates-plot'), height: 220, series,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [{}, { label: 'events/s', size: 60 }],
        legend: { live: false },
      }, data, $('rates-plot'));
    } else {
      ui.ratePlot.setData(data);
    }
  }

  function plotWidth(id) {
    return Math.max(300, $(id).clientWidth || 500);
  }

  // The histogram: an ephemeral recording counted in tracemark ui.
  function fillHistMarkers() {
    const hm = $('hist-marker');
    const prev = hm.value;
    const withNumeric = state.markers.filter((m) => (m.fields || []).some((f) => numericKinds(f.kind)));
    hm.replaceChildren(...withNumeric.map((m) => el('option', { value: m.name }, m.name)));
    if (withNumeric.some((m) => m.name === prev)) hm.value = prev;
    fillHistFields();
  }

  function fillHistFields() {
    const m = state.markers.find((x) => x.name === $('hist-marker').value);
    const hf = $('hist-field');
    const prev = hf.value;
    const fields = m ? m.fields.filter((f) => numericKinds(f.kind)) : [];
    hf.replaceChildren(...fields.map((f) => el('option', { value: f.name }, `${f.name} (${f.kind})`)));
    if (fields.some((f) => f.name === prev)) hf.value = prev;
  }

  $('hist-marker').addEventListener('change', fillHistFields);

  $('hist-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    stopHist();
    $('hist-error').textContent = '';
    const q = new URLSearchParams({ pid: state.pid, glob: $('hist-marker').value, field: $('hist-field').value, filter: $('hist-filter').value.trim() });
    const es = new EventSource(withToken('/api/hist?' + q.toString()));
    state.hist = es;
    $('hist-start').disabled = true;
    $('hist-stop').disabled = false;
    es.addEventListener('hist', (e) => showHist(JSON.parse(e.data)));
    es.addEventListener('failure', (e) => {
      const err = JSON.parse(e.data);
      $('hist-error').textContent = (err.code ? err.code + ': ' : '') + err.message;
      stopHist();
    });
    es.onerror = () => {
      if (state.hist === es) {
        $('hist-error').textContent = 'the histogram stream broke off';
        stopHist();
      }
    };
  });

  $('hist-stop').addEventListener('click', stopHist);

  function stopHist() {
    if (state.hist) state.hist.close();
    state.hist = null;
    $('hist-start').disabled = false;
    $('hist-stop').disabled = true;
  }

  function showHist(h) {
    ui.histUpdates++;
    ui.histEvents = h.events;
    const hs = h.histograms;
    if (hs.length === 0) {
      $('hist-summary').textContent = `${h.events} events, ${h.lost} lost; none with a value of ${h.field} yet`;
      return;
    }
    $('hist-summary').textContent = hs.map((d) => `${h.field} of ${d.marker}: count ${d.count}, avg ${d.avg}, min ${d.min}, max ${d.max}`).join(' · ') +
      ` · ${h.lost} lost`;
    // Align the histograms on their absolute buckets.
    let first = Infinity, last = -1;
    for (const d of hs) { first = Math.min(first, d.first); last = Math.max(last, d.first + d.counts.length - 1); }
    const xs = [], labels = [];
    for (let b = first; b <= last; b++) {
      xs.push(b - first);
      const d = hs.find((x) => b >= x.first && b < x.first + x.labels.length);
      labels.push(d ? d.labels[b - d.first] : '');
    }
    const ys = hs.map((d) => xs.map((i) => {
      const j = i + first - d.first;
      return j >= 0 && j < d.counts.length ? d.counts[j] : 0;
    }));
    const data = [xs, ...ys];
    const key = hs.map((d) => d.marker + '\u0000' + d.value).join('\u0001');
    if (ui.histPlot && ui.histKey === key) {
      ui.histLabels = labels;
      ui.histPlot.setData(data);
      return;
    }
    if (ui.histPlot) ui.histPlot.destroy();
    ui.histKey = key;
    ui.histLabels = labels;
    const bars = uPlot.paths.bars({ size: [0.8, 80] });
    const series = [{ label: 'bucket', value: (u, v) => (v === null ? '' : ui.histLabels[v] || '') }];
    hs.forEach((d, i) => series.push({
      label: d.marker + (d.value ? ' ' + d.value : ''), stroke: palette[i % palette.length],
      fill: palette[i % palette.length] + '99', paths: bars, points: { show: false },
    }));
    ui.histPlot = new uPlot({
      width: plotWidth('hist-plot'), height: 220, series,
      scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        // A tick names its bucket's lower bound; the summary has the ranges.
        { label: h.field + ' (log2 buckets, lower bounds)', values: (u, splits) => splits.map((v) => lowerBound(ui.histLabels[v])), space: 50, incrs: [1, 2, 4, 8] },
        { label: 'events', size: 60 },
      ],
      legend: { live: false },
    }, data, $('hist-plot'));
  }

  // lowerBound returns "16.4µs" for the bucket label "[16.4µs, 32.8µs)".
  function lowerBound(label) {
    if (!label) return '';
    const i = label.indexOf(',');
    return i > 1 ? label.slice(1, i) : label;
  }

  // Recordings.
  $('record-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/record?' + pidQuery(), {
        glob: $('record-glob').value.trim(), filter: $('record-filter').value.trim(), mode: $('record-mode').value,
      });
      $('record-error').textContent = '';
    } catch (err) {
      $('record-error').textContent = (err.code ? err.code + ': ' : '') + err.message;
    }
  });

  async function stopRecording(id) {
    try {
      await api('POST', `/api/record/${encodeURIComponent(id)}/stop`);
      $('record-error').textContent = '';
    } catch (err) {
      $('record-error').textContent = (err.code ? err.code + ': ' : '') + err.message;
    }
  }

  function showRecordings(recs) {
    fill($('recordings').querySelector('tbody'), recs.map((r) => {
      let action;
      if (r.state === 'recording') {
        action = el('button', { type: 'button', class: 'stop', onclick: () => stopRecording(r.id) }, 'Stop');
      } else if (r.state === 'done' || r.state === 'failed') {
        action = el('a', { class: 'download', href: withToken(`/api/record/${encodeURIComponent(r.id)}/trace.tar.gz`), download: '' }, 'Download trace');
      } else {
        action = r.state + '…';
      }
      return el('tr', { 'data-recording': r.id, 'data-state': r.state },
        el('td', {}, r.id),
        el('td', { class: 'name' }, r.glob),
        el('td', { title: r.error || '' }, r.state + (r.error ? ': ' + r.error : '')),
        el('td', { class: 'num' }, r.events),
        el('td', { class: 'num' }, human(r.bytes)),
        el('td', { class: 'num' }, r.lost),
        el('td', {}, action));
    }));
  }

  // Taint and modules.
  async function loadModules() {
    const m = await api('GET', '/api/modules?' + pidQuery());
    const t = m.taint;
    const box = $('taint');
    if (!t.taint) {
      box.replaceChildren(el('div', {}, 'Not tainted.'));
    } else {
      box.replaceChildren(el('div', {}, 'Tainted: ', el('span', { class: 'taint-flag' }, t.taint)),
        ...t.flags.map((f) => el('div', {}, el('span', { class: 'taint-flag' }, f.letter), ' ' + f.meaning +
          ((f.records || []).length ? ' (' + f.records.map((r) => (r.module ? r.module + ': ' : '') + r.reason).join('; ') + ')' : ''))));
    }
    $('insmod-form').hidden = !t.loading;
    fill($('modules').querySelector('tbody'), m.modules.map((x) => el('tr', { 'data-module': x.name },
      el('td', { class: 'name' }, x.name),
      el('td', {}, x.version || '-'),
      el('td', {}, x.license),
      el('td', {}, x.signer),
      el('td', {}, x.taint || '-'),
      el('td', {}, x.state + (x.refused ? ' (' + x.refused + ')' : '')),
      el('td', { class: 'num' }, (x.markers || []).length),
      el('td', { class: 'num' }, x.counters.fired),
      el('td', { class: 'num' }, x.counters.dropped),
      el('td', {}, el('button', { type: 'button', class: 'rmmod', onclick: () => rmmod(x.name) }, 'unload')))));
    $('modules-note').textContent = !t.loading ? 'This process does not load modules at run time.' :
      (m.modules_error ? 'modules: ' + m.modules_error : (m.modules.length ? '' : 'No module is loaded.'));
  }

  function showModulesError(err) {
    $('modules-note').textContent = 'modules: ' + err.message;
  }

  // Loading and unloading, as insmod and rmmod do: errors (a file that is
  // not a module, a module in use without force) are shown by the form.
  function showModuleActionError(err) {
    $('modules-error').textContent = err ? (err.code ? err.code + ': ' : '') + err.message : '';
  }

  $('insmod-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('insmod-btn');
    btn.disabled = true;
    try {
      await api('POST', '/api/insmod?' + pidQuery(), {
        path: $('insmod-path').value.trim(),
        policy: $('insmod-policy').value,
        force: $('modules-force').checked,
      });
      showModuleActionError(null);
    } catch (err) {
      showModuleActionError(err);
    } finally {
      btn.disabled = false;
    }
    loadModules().catch(showModulesError);
  });

  async function rmmod(name) {
    try {
      await api('POST', '/api/rmmod?' + pidQuery(), { name, force: $('modules-force').checked });
      showModuleActionError(null);
    } catch (err) {
      showModuleActionError(err);
    }
    loadModules().catch(showModulesError);
  }

  $('process').addEventListener('change', () => selectProcess($('process').value));
  setInterval(() => {
    loadModules().catch(showModulesError);
    loadProcesses().catch(() => {});
  }, 5000);
  loadProcesses().catch((err) => setConn('down', err.message));
})();
