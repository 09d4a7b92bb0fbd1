// v6matrix website: draws the trend charts and the world map with the vendored ECharts,
// and keeps the runs in progress current on /runs.
// Every figure is also in an HTML table; the charts only add pictures. No inline code,
// no eval, no request to another origin (the pages run under a strict CSP).
//
// Contract with the templates:
//   <div class="chart" data-chart="trend" data-src="/api/...trend.json"></div>
//     JSON {"runs":[{"run":3,"started":"2026-12-01T10:00:00Z","domains":40,
//                    "ns":12.5,"mx":10,"www":30,"ntp":5,"all":2.5}]}  (percentages; null = not measured)
//     After drawing: data-rendered="1", data-points="<runs drawn>".
//   <div class="chart map" data-chart="map" data-src="/api/...countries.json"
//        [data-geo="/static/vendor/world.geo.json"] [data-link="/country/{cc}"]></div>
//     JSON {"countries":[{"cc":"DE","name":"Germany","hosts":12,"v6_addresses":5,"v4_addresses":9}]}
//     After drawing: data-rendered="1", data-countries="<countries with data>".
//   Content inside a chart element is a fallback; it is replaced when the chart is drawn.
//   On failure the element gets a short message and data-rendered="error".
//   <div id="runs" data-live="5">...</div>
//     A part of the page that follows a run in progress: every data-live seconds while
//     the page is visible, the page is fetched again and the element of the same id
//     takes its place, until the new one has no data-live (the run ended). A failed
//     fetch waits twice as long before the next (at most a minute). Each refresh sets
//     data-refreshed="<count>" on the element.
(function () {
  'use strict';

  const GEO_DEFAULT = '/static/vendor/world.geo.json';
  const LINK_DEFAULT = '/country/{cc}';
  // Okabe-Ito colours: distinguishable with colour-vision deficiencies. site.css repeats
  // them for the tooltip markers (.tt-s0 .. .tt-s4), since the CSP forbids inline styles.
  const SERIES = [
    { key: 'ns', name: 'NS', color: '#0072b2' },
    { key: 'mx', name: 'MX', color: '#e69f00' },
    { key: 'www', name: 'WWW', color: '#009e73' },
    { key: 'ntp', name: 'NTP', color: '#cc79a7' },
    { key: 'all', name: 'All', color: '#d55e00' },
  ];

  const charts = [];
  let geoPromise = null;
  let geoSrc = '';

  function reducedMotion() {
    return window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  }

  function darkMode() {
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    })[c]);
  }

  function pct(v) {
    return typeof v === 'number' && isFinite(v) ? v.toFixed(1) + ' %' : 'not measured';
  }

  function num(v) {
    return typeof v === 'number' && isFinite(v) ? v.toLocaleString('en') : '0';
  }

  // Error carries a message meant for the page, not for the console.
  class ChartError extends Error {}

  async function fetchJSON(src) {
    if (!src) {
      throw new ChartError('no data source');
    }
    const url = new URL(src, window.location.href);
    if (url.origin !== window.location.origin) {
      throw new ChartError('data source is not on this site');
    }
    let res;
    try {
      res = await fetch(url.href, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    } catch (e) {
      throw new ChartError('could not load the data');
    }
    if (!res.ok) {
      throw new ChartError('could not load the data (HTTP ' + res.status + ')');
    }
    try {
      return await res.json();
    } catch (e) {
      throw new ChartError('the data is not valid JSON');
    }
  }

  function fail(el, err) {
    const chart = window.echarts && window.echarts.getInstanceByDom(el);
    if (chart) {
      chart.dispose();
    }
    el.removeAttribute('role');
    el.removeAttribute('aria-label');
    el.textContent = '';
    const p = document.createElement('p');
    p.className = 'chart-message';
    p.textContent = 'Chart not available: ' + (err instanceof ChartError ? err.message : 'it could not be drawn') + '. The table has the same figures.';
    el.appendChild(p);
    el.setAttribute('data-rendered', 'error');
  }

  function newChart(el) {
    el.textContent = '';
    const chart = window.echarts.init(el, darkMode() ? 'dark' : null, { renderer: 'canvas' });
    charts.push(chart);
    return chart;
  }

  function runLabel(r) {
    const d = new Date(r.started);
    const day = r.started && !isNaN(d.getTime()) ? d.toISOString().slice(0, 10) : '';
    return (day ? day + ' ' : '') + '(run ' + r.run + ')';
  }

  async function drawTrend(el) {
    const data = await fetchJSON(el.getAttribute('data-src'));
    if (!data || !Array.isArray(data.runs)) {
      throw new ChartError('the data has no runs');
    }
    const runs = data.runs.slice().sort((a, b) => a.run - b.run);
    if (runs.length === 0) {
      el.textContent = '';
      const p = document.createElement('p');
      p.className = 'chart-message';
      p.textContent = 'No runs yet.';
      el.appendChild(p);
      el.setAttribute('data-rendered', '1');
      el.setAttribute('data-points', '0');
      return;
    }
    const labels = runs.map(runLabel);
    const chart = newChart(el);
    chart.setOption({
      backgroundColor: 'transparent',
      animation: !reducedMotion(),
      color: SERIES.map((s) => s.color),
      grid: { left: 64, right: 32, top: 56, bottom: 48 },
      legend: { top: 8, data: SERIES.map((s) => s.name) },
      tooltip: {
        trigger: 'axis',
        formatter: (items) => {
          const list = Array.isArray(items) ? items : [items];
          if (list.length === 0) {
            return '';
          }
          const r = runs[list[0].dataIndex];
          let html = '<strong>' + esc(labels[list[0].dataIndex]) + '</strong>';
          if (typeof r.measured === 'number') {
            html += '<br>' + esc(num(r.measured)) + ' domains measured';
          }
          for (const it of list) {
            html += '<br><span class="tt-mark tt-s' + it.seriesIndex + '"></span>' +
              esc(it.seriesName) + ': ' + esc(pct(it.value));
          }
          return html;
        },
      },
      xAxis: { type: 'category', data: labels, axisLabel: { hideOverlap: true } },
      yAxis: {
        type: 'value', min: 0, max: 100, name: '% of domains with IPv6',
        axisLabel: { formatter: '{value} %' },
      },
      series: SERIES.map((s) => ({
        name: s.name,
        type: 'line',
        showSymbol: true,
        connectNulls: false,
        data: runs.map((r) => (typeof r[s.key] === 'number' ? r[s.key] : null)),
      })),
    });
    const last = runs[runs.length - 1];
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', 'Line chart of IPv6 adoption over ' + runs.length +
      (runs.length === 1 ? ' run' : ' runs') + '; latest ' + labels[labels.length - 1] + ': ' +
      SERIES.map((s) => s.name + ' ' + pct(last[s.key])).join(', ') + '.');
    el.setAttribute('data-points', String(runs.length));
    el.setAttribute('data-rendered', '1');
  }

  // The world map is registered once per page, whatever the number of maps on it.
  function loadWorld(src) {
    if (!geoPromise || geoSrc !== src) {
      geoSrc = src;
      geoPromise = fetchJSON(src).then((geo) => {
        if (!geo || !Array.isArray(geo.features)) {
          throw new ChartError('the world map is not a GeoJSON FeatureCollection');
        }
        // Antarctica would take a fifth of the picture for no hosts. Areas without an ISO
        // code get a unique key so ECharts keeps them apart.
        const features = geo.features
          .filter((f) => f.properties && f.properties.cc !== 'AQ')
          .map((f) => ({
            type: f.type,
            geometry: f.geometry,
            properties: { name: f.properties.name, cc: f.properties.cc || '_' + f.properties.name },
          }));
        window.echarts.registerMap('world', { type: 'FeatureCollection', features: features });
        const names = new Map();
        for (const f of features) {
          names.set(f.properties.cc, f.properties.name);
        }
        return names;
      });
      geoPromise.catch(() => { geoPromise = null; });
    }
    return geoPromise;
  }

  async function drawMap(el) {
    const [data, names] = await Promise.all([
      fetchJSON(el.getAttribute('data-src')),
      loadWorld(el.getAttribute('data-geo') || GEO_DEFAULT),
    ]);
    if (!data || !Array.isArray(data.countries)) {
      throw new ChartError('the data has no countries');
    }
    const link = el.getAttribute('data-link') || LINK_DEFAULT;
    const byCC = new Map();
    for (const c of data.countries) {
      // The API names the country code "key" (as every aggregate row); "cc" is accepted too.
      const cc = c && (typeof c.cc === 'string' ? c.cc : c.key);
      if (typeof cc === 'string' && cc !== '') {
        byCC.set(cc.toUpperCase(), c);
      }
    }
    const rows = Array.from(byCC.entries()).map(([cc, c]) => ({
      name: cc,
      value: typeof c.v6_addresses === 'number' ? c.v6_addresses : 0,
    }));
    const max = rows.reduce((m, r) => Math.max(m, r.value), 0);
    const dark = darkMode();
    const chart = newChart(el);
    chart.setOption({
      baseOption: {
        backgroundColor: 'transparent',
        animation: !reducedMotion(),
        tooltip: {
          trigger: 'item',
          formatter: (p) => {
            const c = byCC.get(p.name);
            const name = (c && c.name) || names.get(p.name) || p.name;
            if (!c) {
              return '<strong>' + esc(name) + '</strong><br>no address located';
            }
            return '<strong>' + esc(name) + ' (' + esc(p.name) + ')</strong>' +
              '<br>IPv6 addresses: ' + esc(num(c.v6_addresses)) +
              '<br>IPv4 addresses: ' + esc(num(c.v4_addresses));
          },
        },
        visualMap: {
          type: 'continuous',
          min: 0,
          max: Math.max(max, 1),
          left: 8,
          bottom: 8,
          itemHeight: 120,
          text: ['IPv6 addresses', ''],
          calculable: true,
          inRange: { color: dark ? ['#1e3a5f', '#7ec3ff'] : ['#c6dbef', '#08306b'] },
        },
        series: [{
          name: 'IPv6 addresses',
          type: 'map',
          map: 'world',
          nameProperty: 'cc',
          roam: false,
          selectedMode: false,
          // The map fills the box less the margins, keeping its aspect (ECharts 6).
          preserveAspect: 'contain',
          left: 8,
          right: 8,
          top: 8,
          bottom: 8,
          itemStyle: { areaColor: dark ? '#3b3f45' : '#e4e7eb', borderColor: dark ? '#15171a' : '#ffffff', borderWidth: 0.5 },
          emphasis: { label: { show: false }, itemStyle: { areaColor: '#e69f00' } },
          data: rows,
        }],
      },
      // Narrow boxes: the scale goes below the map instead of over it.
      media: [{
        query: { maxWidth: 560 },
        option: {
          visualMap: { orient: 'horizontal', left: 'center', bottom: 4, itemWidth: 10, itemHeight: 140, text: ['more', 'IPv6 addresses: fewer'] },
          series: [{ bottom: 48 }],
        },
      }],
    });
    chart.on('click', (p) => {
      if (p.componentType === 'series' && byCC.has(p.name)) {
        window.location.href = link.replace('{cc}', encodeURIComponent(p.name));
      }
    });
    const top = rows.slice().sort((a, b) => b.value - a.value).slice(0, 3)
      .filter((r) => r.value > 0)
      .map((r) => ((byCC.get(r.name).name) || r.name) + ' ' + num(r.value));
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', 'World map of IPv6 addresses by country: ' + rows.length +
      (rows.length === 1 ? ' country' : ' countries') + ' with hosts' +
      (top.length ? '; most IPv6 addresses: ' + top.join(', ') : '') + '.');
    el.setAttribute('data-countries', String(rows.length));
    el.setAttribute('data-rendered', '1');
  }

  const DRAW = { trend: drawTrend, map: drawMap };

  // follow refreshes el (data-live) from the page's own URL; see the contract above.
  function follow(el) {
    const id = el.id;
    const every = Math.max(1, Number(el.getAttribute('data-live')) || 5) * 1000;
    let wait = every;
    let timer = 0;
    let busy = false;
    let stopped = false;
    let refreshed = 0;
    function later() {
      if (!stopped && !busy && timer === 0 && !document.hidden) {
        timer = window.setTimeout(refresh, wait);
      }
    }
    async function refresh() {
      timer = 0;
      if (document.hidden) {
        return; // visibilitychange starts again
      }
      busy = true;
      try {
        const res = await fetch(window.location.href, { headers: { Accept: 'text/html' }, cache: 'no-cache' });
        if (!res.ok) {
          throw new Error('HTTP ' + res.status);
        }
        const next = new DOMParser().parseFromString(await res.text(), 'text/html').getElementById(id);
        const cur = document.getElementById(id);
        if (!next || !cur) {
          throw new Error('no #' + id);
        }
        refreshed++;
        next.setAttribute('data-refreshed', String(refreshed));
        cur.replaceWith(document.adoptNode(next));
        stopped = !next.hasAttribute('data-live');
        wait = every;
      } catch (err) {
        wait = Math.min(wait * 2, 60000);
      } finally {
        busy = false;
      }
      later();
    }
    document.addEventListener('visibilitychange', later);
    later();
  }

  function startLive() {
    for (const el of document.querySelectorAll('[data-live][id]')) {
      follow(el);
    }
  }

  function start() {
    startLive();
    const els = document.querySelectorAll('[data-chart]');
    if (els.length === 0) {
      return;
    }
    for (const el of els) {
      const draw = DRAW[el.getAttribute('data-chart')];
      if (!draw) {
        continue;
      }
      if (!window.echarts) {
        fail(el, new ChartError('the chart library did not load'));
        continue;
      }
      draw(el).catch((err) => fail(el, err));
    }
    let pending = false;
    window.addEventListener('resize', () => {
      if (pending) {
        return;
      }
      pending = true;
      window.requestAnimationFrame(() => {
        pending = false;
        for (const c of charts) {
          if (!c.isDisposed()) {
            c.resize();
          }
        }
      });
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
