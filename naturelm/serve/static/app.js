// NatureLM playground: pick a task, fill the fields (or click an example), see drawn results. No build step.
"use strict";

const TASKS = {
  retrosynthesis: {
    fields: [["product", "Product SMILES", "text"], ["k", "Candidates", "number", 5]],
    examples: [["Paracetamol", {product: "CC(=O)Nc1ccc(O)cc1"}], ["Aspirin", {product: "CC(=O)Oc1ccccc1C(=O)O"}],
               ["Ibuprofen", {product: "CC(C)Cc1ccc(C(C)C(=O)O)cc1"}]],
  },
  forward: {
    fields: [["reactants", "Reactant SMILES ('.'-joined)", "text"], ["k", "Candidates", "number", 1]],
    examples: [["Acylation", {reactants: "CC(=O)Cl.Nc1ccc(O)cc1"}], ["Suzuki", {reactants: "OB(O)c1ccccc1.Brc1ccccn1"}]],
  },
  smiles_to_iupac: {
    fields: [["smiles", "SMILES", "text"], ["k", "Candidates", "number", 1]],
    examples: [["Aspirin", {smiles: "OC(=O)c1ccccc1OC(C)=O"}], ["Caffeine", {smiles: "CN1C=NC2=C1C(=O)N(C)C(=O)N2C"}]],
  },
  iupac_to_smiles: {
    fields: [["name", "IUPAC name", "text"], ["k", "Candidates", "number", 1]],
    examples: [["Aspirin", {name: "2-acetyloxybenzoic acid"}], ["Paracetamol", {name: "N-(4-hydroxyphenyl)acetamide"}]],
  },
  generate_molecules: {
    fields: [["properties", "Target properties (e.g. QED=0.8, TPSA=40; empty = unconditional)", "props"],
             ["n", "Molecules", "number", 4]],
    examples: [["Unconditional", {properties: ""}], ["QED 0.8", {properties: "QED=0.8"}],
               ["2 donors, TPSA 40", {properties: "HBD=2, TPSA=40"}]],
  },
  optimize_molecule: {
    fields: [["smiles", "Molecule SMILES", "text"], ["goal", "Goal", "text"], ["n", "Candidates", "number", 4]],
    examples: [["Increase QED", {smiles: "CCOc1ccccc1C(=O)O", goal: "increase QED"}],
               ["Cross the BBB", {smiles: "OC(=O)CN1CCN(CC1)C(=O)c1ccccc1", goal: "bbb"}]],
  },
  design_protein: {
    fields: [["description", "Property, e.g. soluble (empty = unconditional)", "text"], ["n", "Sequences", "number", 1]],
    examples: [["Soluble", {description: "soluble"}], ["Unconditional", {description: ""}]],
  },
  design_rna: {
    fields: [["n", "Sequences", "number", 1]],
    examples: [["One", {n: 1}], ["Four", {n: 4}]],
  },
  design_material: {
    fields: [["elements", "Elements (comma-separated)", "list"],
             ["property", "or a property", "select", "", ["", "band_gap", "formation_energy", "bulk_modulus"]],
             ["target", "Property target", "number", ""], ["n", "Materials", "number", 4],
             ["method", "Method (elements)", "select", "auto", ["auto", "ranked", "model"]]],
    examples: [["Li-Fe-P-O", {elements: "Li, Fe, P, O", property: "", target: ""}],
               ["Band gap 1.5 eV", {elements: "", property: "band_gap", target: 1.5}]],
  },
  guide_rna: {
    fields: [["dna", "Target DNA", "textarea"], ["n", "Guides", "number", 4]],
    examples: [["Target", {dna: "ATGCTGACCGGTTACAGGCTAGCTAGCTGGACCTAGGTCGAGG"}]],
  },
  design_ligand: {
    fields: [["protein", "Protein (pocket) sequence", "textarea"], ["target", "or a target gene / name", "text"],
             ["n", "Molecules", "number", 4]],
    examples: [["DRD3 by name", {protein: "", target: "DRD3"}],
               ["DRD3 pocket sequence", {protein: "YALSYCALILAIVFGNGLVCMAVLKERALQTTTNYLVVSLAVADLLVATLVMPWVVYLEVTGGVWNFSRICCDVFVTLDVMMCTASIWNLCAISIDRYTAVVMPVHYQHGTGQSSCRRVALMITAVWVLAFAVSCPLLFGFNTTGDPTVCSISNPDFVIYSSVVSFYLPFGVTVLVYARIYVVLKQRRRKGVPLREKKATQMVAIVLGAFIVCWLPFFLTHVLNTHCQTCHVSPELYSATTWLGYVNSALNPVIYTTFNIEFRKAFLKILSC", target: ""}],
               ["Thrombin", {protein: "", target: "thrombin"}]],
  },
  translate_dna: {
    fields: [["dna", "Coding sequence (start .. stop)", "textarea"], ["k", "Candidates", "number", 1]],
    examples: [["Short gene", {dna: "ATGAAAGCACTGGTTCTGGGCTAA"}]],
  },
  back_translate: {
    fields: [["protein", "Protein sequence", "textarea"], ["n", "Genes", "number", 2]],
    examples: [["Peptide", {protein: "MKALVLG"}]],
  },
  rna_for_protein: {
    fields: [["rbp", "RNA-binding protein", "text"], ["by", "named by", "select", "gene", ["gene", "gene_id", "family"]],
             ["n", "RNAs", "number", 4]],
    examples: [["HNRNPA1", {rbp: "HNRNPA1", by: "gene"}], ["PUF family", {rbp: "PUF", by: "family"}]],
  },
  classify: {
    fields: [["question", "Yes/no question (entities tagged)", "textarea"]],
    examples: [["Nicotine, BBB", {question: "Can <mol>CN1CCC[C@H]1c1cccnc1</mol> traverse the blood-brain barrier?"}]],
  },
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
};

function headers() {
  const h = {"Content-Type": "application/json"};
  const key = $("#apikey").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function errorText(resp) {
  try { const j = await resp.json(); return `${resp.status}: ${j.error ? j.error.message : JSON.stringify(j)}` + caret(j.error); }
  catch (e) { return `${resp.status}: ${resp.statusText}`; }
}

// Where in the input the problem is: the quoted input of an entity error with a caret under its position.
function caret(err) {
  if (!err || err.position == null) return "";
  const m = /in '(.*)'$/.exec(err.message) || /in "(.*)"$/.exec(err.message);
  if (!m || err.position > m[1].length) return `\n(at position ${err.position})`;
  return `\n\n${m[1]}\n${" ".repeat(err.position)}^ position ${err.position}`;
}

// A server SVG drawing as <img> (an object URL, so SVG scripts never run and the API key still applies).
function drawing(path, params, alt) {
  const img = el("img", {class: "drawing", alt: alt});
  const holder = el("div", {}, img);
  fetch(path + "?" + new URLSearchParams(params), {headers: headers()}).then(async (resp) => {
    if (!resp.ok) { holder.replaceChildren(el("div", {class: "meta"}, "no drawing: " + await errorText(resp))); return; }
    img.src = URL.createObjectURL(await resp.blob());
    img.dataset.kind = path.split("/").pop();
  });
  return holder;
}

const molecule = (smiles) => drawing("/v1/draw/molecule", {smiles}, smiles);
const reaction = (reactants, product) => drawing("/v1/draw/reaction", {reactants, product}, `${reactants}>>${product}`);

function renderForm(name) {
  const spec = TASKS[name];
  $("#fields").replaceChildren();
  for (const [field, label, type, dflt, options] of spec.fields) {
    const id = "f-" + field;
    let input;
    if (type === "textarea") input = el("textarea", {id});
    else if (type === "select") input = el("select", {id}, ...options.map((o) => el("option", {value: o}, o || "—")));
    else input = el("input", {id, type: type === "number" ? "number" : "text", step: "any"});
    input.dataset.type = type;
    if (dflt !== undefined) input.value = dflt;
    $("#fields").append(el("label", {for: id}, label), input);
  }
  $("#examples").replaceChildren(el("span", {class: "meta"}, "Examples:"));
  for (const [label, values] of spec.examples) {
    const b = el("button", {type: "button"}, label);
    b.addEventListener("click", () => { for (const [k, v] of Object.entries(values)) $("#f-" + k).value = v; });
    $("#examples").append(b);
  }
  $("#summary").textContent = summaries[name] || "";
  $("#results").replaceChildren();
  $("#input-view").replaceChildren();
  $("#error").hidden = true;
}

function readForm(name) {
  const body = {};
  for (const [field, , type] of TASKS[name].fields) {
    const raw = $("#f-" + field).value.trim();
    if (type === "number") { if (raw !== "") body[field] = Number(raw); }
    else if (type === "list") { if (raw) body[field] = raw.split(/[\s,]+/).filter(Boolean); }
    else if (type === "select") { if (raw) body[field] = raw; }
    else if (type === "props") {
      body[field] = {};
      for (const part of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
        const [k, v] = part.split("=").map((s) => s.trim());
        body[field][k] = Number(v);
      }
    } else body[field] = raw;
  }
  return body;
}

function badge(ok, yes, no) { return el("span", {class: "badge " + (ok ? "ok" : "bad")}, ok ? yes : no); }

// The overall verdict: meets the request (every check passed), fails its checks, or unverified (nothing could check it).
function verdict(meets) {
  if (meets === true) return el("span", {class: "badge ok verdict"}, "meets request");
  if (meets === false) return el("span", {class: "badge bad verdict"}, "fails checks");
  return el("span", {class: "badge warn verdict"}, "unverified");
}

function fmt(v) {
  if (v == null) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${fmt(x)}`).join(", ");
  return String(v);
}

// Each check: ✔ / ✘ / ? (undecided) / · (reported only), its name, the achieved value against the target, the detail.
function checkList(checks) {
  if (!checks || !checks.length) return null;
  const items = checks.map((c) => {
    const mark = c.passed === true ? "✔" : c.passed === false ? "✘" : c.required ? "?" : "·";
    const cls = c.passed === true ? "pass" : c.passed === false ? "fail" : "undecided";
    const values = c.value != null || c.target != null
      ? el("span", {class: "values"}, ` ${fmt(c.value)}${c.target != null ? " (target " + fmt(c.target) + ")" : ""}`) : null;
    return el("li", {class: "check " + cls, "data-check": c.name}, el("b", {}, `${mark} ${c.name}`), values,
              c.detail ? el("span", {class: "meta"}, " — " + c.detail) : null);
  });
  return el("ul", {class: "checks"}, ...items);
}

// The guide's site in the target DNA, highlighted (a − strand site is mapped back onto the + strand).
function targetSite(dna, r) {
  const c = (r.checks || []).find((x) => x.name === "target_site");
  if (!c || !c.value || !dna) return null;
  const n = (r.canonical || r.entity).length;
  const start = c.value.strand === "+" ? c.value.position : dna.length - c.value.position - n;
  return el("div", {class: "seq site"}, dna.slice(0, start), el("mark", {}, dna.slice(start, start + n)),
            dna.slice(start + n), el("div", {class: "meta"}, `${c.value.strand} strand, position ${c.value.position}, PAM ${c.value.pam || "—"}`));
}

function renderResult(task, input, r, i) {
  const head = el("h3", {}, `#${i + 1}`, verdict(r.meets_request), badge(r.valid, "parses", "does not parse"),
                  el("span", {class: "source"}, "source: " + (r.source || "model")),
                  el("span", {class: "meta"}, `${r.verified_by ? "parsed by " + r.verified_by + " · " : ""}score ${
                    r.score == null ? "—" : r.score.toFixed(2)}`));
  const card = el("div", {class: "card result " + (r.meets_request === true ? "met" : r.meets_request === false ? "failed" : "unverified")}, head);
  const entity = r.canonical || r.entity;
  if (!r.valid && r.tag !== "material") {
    card.append(el("div", {class: "mono"}, r.entity || "(empty)"), el("div", {class: "meta mono"}, "raw: " + r.raw),
                checkList(r.checks));
    return card;
  }
  const checks = checkList(r.checks);
  if (checks) card.append(checks);
  const site = task === "guide_rna" ? targetSite(input.dna, r) : null;
  if (site) card.append(site);
  appendAnswer(card, task, input, r, entity);
  return card;
}

function appendAnswer(card, task, input, r, entity) {
  if (task === "retrosynthesis") card.append(el("div", {class: "mono"}, entity), reaction(entity, input.product));
  else if (task === "forward") card.append(el("div", {class: "mono"}, entity), reaction(input.reactants, entity));
  else if (r.tag && ["mol", "product", "reactants"].includes(r.tag)) card.append(el("div", {class: "mono"}, entity), molecule(entity));
  else if (r.tag === "protein" || r.tag === "antibody")
    card.append(el("div", {class: "meta"}, `${entity.length} residues`), el("div", {class: "seq"}, entity));
  else if (r.tag === "rna" || r.tag === "dna") {
    card.append(el("div", {class: "meta"}, `${entity.length} nt` + (r.mfe != null ? ` · MFE ${r.mfe} kcal/mol` : "")),
                el("div", {class: "seq"}, entity));
    if (r.structure) card.append(el("div", {class: "seq"}, r.structure), drawing("/v1/draw/rna", {sequence: entity}, r.structure));
  } else if (r.tag === "material") {
    card.append(el("div", {}, el("b", {}, r.formula || "?"), " · space group ", r.spacegroup == null ? "unknown" : String(r.spacegroup),
                   " ", r.formula ? badge(r.smact_valid, "SMACT valid", "SMACT invalid") : null),
                el("div", {class: "meta mono"}, r.entity));
  } else card.append(el("div", {}, entity));
}

function renderClassification(out) {
  const head = el("h3", {}, verdict(out.meets_request), el("span", {class: "source"}, "source: " + (out.source || "model")));
  return el("div", {class: "card result"}, head, el("div", {class: "prob"}, out.p_yes.toFixed(3)),
            `model p(Yes) — answer: ${out.answer}`, checkList(out.checks));
}


function renderInput(task, input) {
  const view = $("#input-view");
  view.replaceChildren();
  const smiles = input.product || input.reactants || input.smiles;
  if (smiles) view.append(el("div", {class: "card"}, el("h3", {}, "Input ", el("span", {class: "meta mono"}, smiles)), molecule(smiles)));
  const seq = input.protein || (task === "translate_dna" ? input.dna : null);
  if (seq) view.append(el("div", {class: "card"}, el("h3", {}, input.protein ? "Protein " : "DNA ",
                                                     el("span", {class: "meta"}, `${seq.length} ${input.protein ? "residues" : "nt"}`)),
                          el("div", {class: "seq"}, seq)));
  if (input.target) view.append(el("div", {class: "card"}, el("h3", {}, "Target ", el("span", {class: "meta"}, input.target))));
  if (input.rbp) view.append(el("div", {class: "card"}, el("h3", {}, "RNA-binding protein ", el("span", {class: "meta"}, `${input.by} ${input.rbp}`))));
}

async function run(ev) {
  ev.preventDefault();
  const task = $("#task").value;
  $("#error").hidden = true;
  $("#run").disabled = true;
  $("#input-view").replaceChildren();
  $("#results").replaceChildren(el("p", {class: "spinner"}, "generating…"));
  try {
    const resp = await fetch("/v1/tasks/" + task, {method: "POST", headers: headers(), body: JSON.stringify(readForm(task))});
    if (!resp.ok) throw new Error(await errorText(resp));
    const out = await resp.json();
    renderInput(task, out.input);
    const cards = task === "classify" ? [renderClassification(out)]
      : out.results.map((r, i) => renderResult(task, out.input, r, i));
    if (!cards.length) cards.push(el("p", {}, "no results"));
    $("#results").replaceChildren(el("p", {class: "meta"}, `${task} · ${out.elapsed_s}s`), ...cards);
  } catch (e) {
    $("#results").replaceChildren();
    $("#error").textContent = e.message;
    $("#error").hidden = false;
  } finally {
    $("#run").disabled = false;
  }
}

const summaries = {};

async function init() {
  for (const name of Object.keys(TASKS)) $("#task").append(el("option", {value: name}, name.replace(/_/g, " ")));
  $("#apikey").value = localStorage.getItem("naturelm-key") || "";
  $("#apikey").addEventListener("change", () => localStorage.setItem("naturelm-key", $("#apikey").value));
  $("#task").addEventListener("change", () => renderForm($("#task").value));
  $("#form").addEventListener("submit", run);
  renderForm($("#task").value);
  try {
    const health = await (await fetch("/health")).json();
    $("#status").textContent = `model ${health.model} · ready`;
    $("#keybox").hidden = !health.auth;
    const tasks = await fetch("/v1/tasks", {headers: headers()});
    if (tasks.ok) {
      for (const [name, t] of Object.entries((await tasks.json()).tasks)) summaries[name] = t.summary;
      $("#summary").textContent = summaries[$("#task").value] || "";
    }
  } catch (e) {
    $("#status").textContent = "server unreachable";
  }
}

init();
