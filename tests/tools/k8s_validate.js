#!/usr/bin/env node
// k8s_validate.js: validate Kubernetes manifests offline against the API
// schemas, with the npm package kubernetes-models (and yaml to read them).
//
//   node tests/tools/k8s_validate.js PATH...
//
// PATH is a file or a directory (searched recursively). In *.yaml and *.yml
// files every YAML document is read; in *.md files every ```yaml fenced
// block. A document that is a mapping with apiVersion and kind is a manifest:
// it is checked against kubernetes-models' schema of that apiVersion/kind
// (types, enums, required fields: "spec.completions must be integer"), and
// every field the schema does not know is an error too (kubernetes-models
// accepts those, as the Kubernetes OpenAPI schemas do not forbid them, but
// the API server drops them or, with strict field validation, refuses them:
// a typo such as backoffLimitPerIdx would otherwise pass). Other documents
// (a compose file) are skipped. Duplicate keys and YAML syntax errors are
// errors.
//
// Prints one line per manifest ("ok FILE#N KIND NAME" or "FAIL FILE#N ...:
// why"); exit 0 when every manifest is valid and there was at least one,
// 1 when one is not, 2 on a usage error or when the modules are missing
// (NODE_PATH must reach kubernetes-models and yaml; tests/e2e/k8s.sh
// installs them).
"use strict";

const fs = require("fs");
const path = require("path");

let YAML;
try {
  YAML = require("yaml");
  require.resolve("kubernetes-models/package.json");
} catch (e) {
  console.error("k8s_validate: the npm packages kubernetes-models and yaml are not found " +
    "(NODE_PATH=" + (process.env.NODE_PATH || "") + "); tests/e2e/k8s.sh installs them");
  process.exit(2);
}

function files(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory())
    return [p];
  let out = [];
  for (const name of fs.readdirSync(p).sort()) {
    const q = path.join(p, name);
    const s = fs.lstatSync(q);
    if (s.isDirectory())
      out = out.concat(files(q));
    else if (s.isFile() && /\.(ya?ml|md)$/.test(name))
      out.push(q);
  }
  return out;
}

// The YAML texts of a file: [label, text] pairs.
function yamlTexts(file) {
  const src = fs.readFileSync(file, "utf8");
  if (!file.endsWith(".md"))
    return [[file, src]];
  const out = [];
  const re = /^```ya?ml[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;
  let m;
  while ((m = re.exec(src)) !== null) {
    const line = src.slice(0, m.index).split("\n").length;
    out.push([file + ":" + line, m[1]]);
  }
  return out;
}

// The model class of apiVersion/kind: kubernetes-models/<group>/<version>/<Kind>
// (the core group is kubernetes-models/v1/<Kind>); only a top-level kind,
// whose class carries that very apiVersion and kind.
function modelOf(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" ||
      !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind))
    return null;
  let mod;
  try {
    mod = require("kubernetes-models/" + apiVersion + "/" + kind);
  } catch (e) {
    return null;
  }
  const cls = mod[kind];
  if (!cls || cls.apiVersion !== apiVersion || cls.kind !== kind)
    return null;
  return cls;
}

// Wrap a parsed document so that every property the validator reads is
// recorded; what it never read is unknown to the schema. The validators
// that kubernetes-models compiles (ajv) read each property their schema
// names (`data.template === undefined || ...`), and walk the keys of a
// map (labels, ConfigMap data) one by one.
function tracked(root) {
  const seen = new WeakMap(); // target -> Set of keys read
  const proxies = new WeakMap();
  function wrap(v) {
    if (v === null || typeof v !== "object")
      return v;
    if (proxies.has(v))
      return proxies.get(v);
    seen.set(v, new Set());
    const p = new Proxy(v, {
      get(t, k, r) {
        if (typeof k === "string")
          seen.get(t).add(k);
        return wrap(Reflect.get(t, k, r));
      },
    });
    proxies.set(v, p);
    return p;
  }
  return { proxy: wrap(root), seen };
}

function unknownFields(v, seen, where, out) {
  if (v === null || typeof v !== "object")
    return;
  const keys = seen.get(v);
  if (Array.isArray(v)) {
    v.forEach((x, i) => unknownFields(x, seen, where + "[" + i + "]", out));
    return;
  }
  for (const k of Object.keys(v)) {
    const w = where ? where + "." + k : k;
    if (!keys || !keys.has(k))
      out.push(w);
    else
      unknownFields(v[k], seen, w, out);
  }
}

function check(doc) {
  const cls = modelOf(doc.apiVersion, doc.kind);
  if (!cls)
    return ["no schema for apiVersion " + JSON.stringify(doc.apiVersion) + ", kind " +
      JSON.stringify(doc.kind) + " in kubernetes-models"];
  const { proxy, seen } = tracked(doc);
  try {
    // The model's validate() with the document itself as `this`: no copy,
    // so that the reads are seen.
    cls.prototype.validate.call(proxy);
  } catch (e) {
    return [String(e.message || e).trim().replace(/\s*\n\s*/g, "; ")];
  }
  const unknown = [];
  unknownFields(doc, seen, "", unknown);
  return unknown.map((f) => "unknown field " + f);
}

function main(argv) {
  if (argv.length === 0 || argv.includes("-h") || argv.includes("--help")) {
    console.error("usage: k8s_validate.js PATH...");
    return 2;
  }
  let manifests = 0, bad = 0;
  for (const a of argv) {
    let list;
    try {
      list = files(a);
    } catch (e) {
      console.error("k8s_validate: " + a + ": " + e.message);
      return 2;
    }
    for (const f of list) {
      for (const [label, text] of yamlTexts(f)) {
        const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
        docs.forEach((d, i) => {
          const where = label + "#" + (i + 1);
          if (d.errors && d.errors.length) {
            bad++;
            console.log("FAIL " + where + ": YAML: " + d.errors[0].message.split("\n")[0]);
            return;
          }
          const doc = d.toJS();
          if (!doc || typeof doc !== "object" || Array.isArray(doc) ||
              !("apiVersion" in doc) || !("kind" in doc))
            return;
          manifests++;
          const name = (doc.metadata && doc.metadata.name) || "(no name)";
          const errs = check(doc);
          if (errs.length === 0) {
            console.log("ok " + where + " " + doc.apiVersion + " " + doc.kind + " " + name);
          } else {
            bad++;
            for (const e of errs)
              console.log("FAIL " + where + " " + doc.kind + " " + name + ": " + e);
          }
        });
      }
    }
  }
  console.log(manifests + " manifests, " + bad + " invalid");
  if (manifests === 0) {
    console.log("k8s_validate: no Kubernetes manifest found");
    return 1;
  }
  return bad ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
