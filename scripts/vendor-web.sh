#!/usr/bin/env bash
# Vendors the website's third-party assets into internal/web/static/vendor/:
#   echarts.min.js   Apache ECharts (draws the trend charts and the world map)
#   world.geo.json   Natural Earth 1:110m countries (from world-atlas TopoJSON) as a GeoJSON
#                    FeatureCollection; properties: name, cc (ISO 3166-1 alpha-2, "" if none)
#   VERSIONS.md      package, exact version, licence, source file and sha256 of each file
#   LICENSE-*, NOTICE-natural-earth   the licence texts
# The outputs are committed, so neither `go build` nor CI needs Node; only this script does
# (node and npm, reaching the npm registry). Idempotent: running it again with the same
# versions rewrites identical files (VERSIONS.md keeps its date unless something changed).
# Bump a version below, run the script, review the diff, commit.
set -euo pipefail

# Exact versions, so a run is reproducible. echarts 6.x and world-atlas 2.x are the
# supported majors; topojson-client and i18n-iso-countries are used only for the conversion.
ECHARTS=6.1.0
WORLD_ATLAS=2.0.2
TOPOJSON_CLIENT=3.1.0
I18N_ISO_COUNTRIES=7.14.0

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/internal/web/static/vendor"
for tool in node npm sha256sum; do
  command -v "$tool" >/dev/null || { echo "vendor-web.sh: $tool is needed and not on PATH" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "installing echarts@$ECHARTS world-atlas@$WORLD_ATLAS topojson-client@$TOPOJSON_CLIENT i18n-iso-countries@$I18N_ISO_COUNTRIES into $tmp" >&2
(
  cd "$tmp"
  npm init -y >/dev/null
  # --ignore-scripts: nothing from the registry runs here; we only copy and convert files.
  npm install --no-audit --no-fund --ignore-scripts --silent \
    "echarts@$ECHARTS" "world-atlas@$WORLD_ATLAS" \
    "topojson-client@$TOPOJSON_CLIENT" "i18n-iso-countries@$I18N_ISO_COUNTRIES"
)
nm="$tmp/node_modules"
mkdir -p "$out"

# The conversion. Kosovo has no ISO numeric code in Natural Earth; GeoIP databases
# (MaxMind, DB-IP) use the user-assigned code XK for it, so the map does too.
cat >"$tmp/convert.js" <<'EOF'
'use strict';
const fs = require('fs');
const topojson = require('topojson-client');
const iso = require('i18n-iso-countries');
const [src, dst] = process.argv.slice(2);
const topo = JSON.parse(fs.readFileSync(src, 'utf8'));
const byName = { Kosovo: 'XK' };
const round = (v) => Math.round(v * 100) / 100;

// Rounds a ring's points to 2 decimals, mends antimeridian crossings for a planar map,
// drops repeated points; null if the ring degenerates.
function ring(points) {
  return dedupe(antimeridian(points.map(([x, y]) => [round(x), round(y)])));
}
// Natural Earth cuts rings at +-180 degrees, so a flat map would draw a line across the
// world where a ring jumps from one side to the other. A ring that jumps twice (Russia's
// Chukotka, Fiji) is moved east as one piece (longitudes < 0 get +360); a ring that jumps
// once goes around the pole (Antarctica) and is closed along the map's bottom edge.
function antimeridian(r) {
  const jumps = [];
  for (let i = 1; i < r.length; i++) {
    if (Math.abs(r[i][0] - r[i - 1][0]) > 180) jumps.push(i);
  }
  if (jumps.length === 0) return r;
  if (jumps.length % 2 === 0) return r.map(([x, y]) => [x < 0 ? round(x + 360) : x, y]);
  const i = jumps[0];
  const a = r[i - 1];
  const b = r[i];
  const e = Math.sign(a[0]) * 180;
  const pole = a[1] < 0 ? -90 : 90;
  return [...r.slice(0, i), [e, a[1]], [e, pole], [-e, pole], [-e, b[1]], ...r.slice(i)];
}
function dedupe(points) {
  const r = [];
  for (const p of points) {
    const last = r[r.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) r.push(p);
  }
  if (r.length > 1 && (r[0][0] !== r[r.length - 1][0] || r[0][1] !== r[r.length - 1][1])) {
    r.push(r[0].slice());
  }
  return r.length >= 4 ? r : null;
}
function polygon(rings) {
  const rs = rings.map(ring);
  if (!rs[0]) return null; // the outer ring vanished: the polygon is smaller than the grid
  return rs.filter(Boolean);
}

const fc = topojson.feature(topo, topo.objects.countries);
const features = [];
const missing = [];
for (const f of fc.features) {
  const name = f.properties.name;
  const cc = (f.id !== undefined && iso.numericToAlpha2(f.id)) || byName[name] || '';
  if (!cc) missing.push(name);
  let geometry;
  if (f.geometry.type === 'Polygon') {
    const p = polygon(f.geometry.coordinates);
    geometry = p && { type: 'Polygon', coordinates: p };
  } else if (f.geometry.type === 'MultiPolygon') {
    const ps = f.geometry.coordinates.map(polygon).filter(Boolean);
    geometry = ps.length === 0 ? null : ps.length === 1
      ? { type: 'Polygon', coordinates: ps[0] }
      : { type: 'MultiPolygon', coordinates: ps };
  } else {
    throw new Error(`${src}: feature ${name}: unexpected geometry ${f.geometry.type}`);
  }
  if (!geometry) {
    missing.push(`${name} (geometry too small, dropped)`);
    continue;
  }
  features.push({ type: 'Feature', properties: { name, cc: cc.toUpperCase() }, geometry });
}
// Sorted by code then name, so the file is stable and diffs are readable.
features.sort((a, b) => (a.properties.cc + a.properties.name).localeCompare(b.properties.cc + b.properties.name));
// One feature per line: compact, yet a diff shows which country changed.
const lines = features.map((f) => JSON.stringify(f));
fs.writeFileSync(dst, '{"type":"FeatureCollection","features":[\n' + lines.join(',\n') + '\n]}\n');
console.error(`world.geo.json: ${features.length} features; without an ISO code: ${missing.join(', ') || 'none'}`);
EOF
NODE_PATH="$nm" node "$tmp/convert.js" "$nm/world-atlas/countries-110m.json" "$tmp/world.geo.json"

# install_if_changed SRC DST: copies only when the content differs, and says what it did.
install_if_changed() {
  if cmp -s "$1" "$2"; then
    echo "unchanged $2"
  else
    cp "$1" "$2"
    echo "wrote     $2"
  fi
}

install_if_changed "$nm/echarts/dist/echarts.min.js" "$out/echarts.min.js"
install_if_changed "$tmp/world.geo.json" "$out/world.geo.json"

{
  cat "$nm/echarts/LICENSE"
  printf '\n\n========================================================================\nNOTICE\n\n'
  cat "$nm/echarts/NOTICE"
  printf '\n\n========================================================================\nlicenses/LICENSE-d3 (referenced above)\n\n'
  cat "$nm/echarts/licenses/LICENSE-d3"
} >"$tmp/LICENSE-echarts"
install_if_changed "$tmp/LICENSE-echarts" "$out/LICENSE-echarts"
install_if_changed "$nm/world-atlas/LICENSE" "$out/LICENSE-world-atlas"

cat >"$tmp/NOTICE-natural-earth" <<'EOF'
world.geo.json is derived from Natural Earth's Admin 0 country boundaries, 1:110m
(https://www.naturalearthdata.com/), version 4.1.0, as redistributed in TopoJSON by the
world-atlas package (ISC licence, see LICENSE-world-atlas).

Natural Earth data is in the public domain: "All versions of Natural Earth raster + vector
map data found on this website are in the public domain. You may use the maps in any
manner, including modifying the content and design, electronic dissemination, and offset
printing." (https://www.naturalearthdata.com/about/terms-of-use/)

Changes made by scripts/vendor-web.sh: converted from TopoJSON to GeoJSON, coordinates
rounded to 2 decimals, rings cut at the antimeridian joined for a flat map (Russia's and
Fiji's eastern parts extend past 180 degrees, Antarctica is closed along -90 degrees),
ISO 3166-1 alpha-2 codes added (property "cc"; "XK" for Kosovo,
"" where the area has no code). Boundaries are Natural Earth's and imply no position on
disputed territories.
EOF
install_if_changed "$tmp/NOTICE-natural-earth" "$out/NOTICE-natural-earth"

# VERSIONS.md: the table of what is vendored. The date is the day the content last changed.
license_of() { node -p "require('$nm/$1/package.json').license"; }
sha() { sha256sum "$out/$1" | cut -d' ' -f1; }
body="$tmp/VERSIONS.body"
{
  echo "| File | Package | Version | Licence | Source file | SHA-256 |"
  echo "|---|---|---|---|---|---|"
  echo "| echarts.min.js | echarts | $ECHARTS | $(license_of echarts) | echarts/dist/echarts.min.js | \`$(sha echarts.min.js)\` |"
  echo "| world.geo.json | world-atlas | $WORLD_ATLAS | $(license_of world-atlas) (data: Natural Earth, public domain) | world-atlas/countries-110m.json, converted with topojson-client $TOPOJSON_CLIENT and i18n-iso-countries $I18N_ISO_COUNTRIES ($(license_of topojson-client), $(license_of i18n-iso-countries)) | \`$(sha world.geo.json)\` |"
  echo "| LICENSE-echarts | echarts | $ECHARTS | $(license_of echarts) | echarts/LICENSE + NOTICE + licenses/LICENSE-d3 | \`$(sha LICENSE-echarts)\` |"
  echo "| LICENSE-world-atlas | world-atlas | $WORLD_ATLAS | $(license_of world-atlas) | world-atlas/LICENSE | \`$(sha LICENSE-world-atlas)\` |"
  echo "| NOTICE-natural-earth | - | - | public domain | written by scripts/vendor-web.sh | \`$(sha NOTICE-natural-earth)\` |"
} >"$body"
date_line="Vendored on $(date -u +%Y-%m-%d)."
if [ -f "$out/VERSIONS.md" ] && tail -n +6 "$out/VERSIONS.md" | cmp -s - "$body"; then
  date_line="$(sed -n 4p "$out/VERSIONS.md")"
fi
{
  echo "# Vendored web assets"
  echo
  echo "Written by scripts/vendor-web.sh (do not edit by hand; bump the versions there and run it)."
  echo "$date_line"
  echo
  cat "$body"
} >"$tmp/VERSIONS.md"
install_if_changed "$tmp/VERSIONS.md" "$out/VERSIONS.md"
