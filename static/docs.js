// Renders /api/v1/openapi.json: operations by tag, parameters, bodies, answers, schemas, and a
// "try it" that sends the request with the token above. Plain DOM, no library, nothing fetched
// from elsewhere: the page works on a server with no internet.
"use strict";

const $ = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") el.className = value; else el.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
};
const pretty = (value) => JSON.stringify(value, null, 2);
let doc;
const tokenInput = document.getElementById("token");

// Descriptions are CommonMark; ours use only `code` spans (99 of ~420 descriptions): shown as
// <code>, the rest as text (textContent, never HTML: a description may say <access_token>).
function prose(text) {
  const out = $("span");
  String(text || "").split("`").forEach((part, i) => out.append(i % 2 ? $("code", {}, part) : part));
  return out;
}

function refName(ref) { return ref.split("/").pop(); }

function typeOf(schema) {
  if (!schema) return "";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  let type = Array.isArray(schema.type) ? schema.type.join(" | ") : (schema.type || "any");
  if (schema.type === "array") type = `array of ${typeOf(schema.items)}`;
  const limits = [];
  for (const [key, label] of [["minimum", "≥"], ["maximum", "≤"], ["minLength", "min length "], ["maxLength", "max length "],
                               ["maxItems", "max items "], ["format", ""], ["pattern", "pattern "], ["default", "default "]]) {
    if (schema[key] !== undefined) limits.push(label + schema[key]);
  }
  if (schema.enum) limits.push("one of " + schema.enum.map(String).join(", "));
  return type + (limits.length ? ` (${limits.join(", ")})` : "");
}

function schemaLink(schema) {
  const text = typeOf(schema);
  return schema && schema.$ref ? $("a", {href: "#schema-" + refName(schema.$ref)}, text) : $("code", {}, text);
}

function propertiesTable(schema) {
  const props = schema && schema.properties;
  if (!props || !Object.keys(props).length) return null;
  const required = new Set(schema.required || []);
  const table = $("table", {}, $("tr", {}, $("th", {}, "field"), $("th", {}, "type"), $("th", {}, "")));
  for (const [name, sub] of Object.entries(props)) {
    table.append($("tr", {}, $("td", {}, $("code", {}, name), required.has(name) ? " *" : ""), $("td", {}, schemaLink(sub)),
                 $("td", {}, prose(sub.description))));
  }
  return table;
}

function content(media) {
  const out = $("div");
  for (const [type, entry] of Object.entries(media || {})) {
    out.append($("div", {}, $("code", {}, type), " ", entry.schema ? schemaLink(entry.schema) : ""));
    if (entry.schema && !entry.schema.$ref) out.append(propertiesTable(entry.schema) || "");
    if (entry["x-events"]) {
      const table = $("table", {}, $("tr", {}, $("th", {}, "event"), $("th", {}, "data")));
      for (const [name, event] of Object.entries(entry["x-events"])) {
        table.append($("tr", {}, $("td", {}, $("code", {}, name)), $("td", {}, schemaLink(event.data),
                                                                       event.data.description ? prose(" — " + event.data.description) : "")));
      }
      out.append(table);
    }
    if (entry.example !== undefined) out.append($("pre", {}, typeof entry.example === "string" ? entry.example : pretty(entry.example)));
  }
  return out;
}

// A body to send: JSON or text in a textarea, or a multipart form of its fields (a file input for
// each binary one): typed into a textarea, a multipart body had no boundary and the server refused it.
function bodyEditor(bodyType, media) {
  const fields = media.schema && media.schema.properties;
  if (bodyType === "multipart/form-data" && fields) {
    const inputs = Object.entries(fields).map(([name, schema]) =>
      [name, $("input", schema.format === "binary" ? {type: "file", name} : {name, placeholder: typeOf(schema), size: 40})]);
    const element = $("div", {}, ...inputs.map(([name, input]) => $("div", {}, $("label", {}, `${name} `, input))));
    const value = () => {
      const data = new FormData();
      for (const [name, input] of inputs) {
        if (input.type === "file") { for (const file of input.files) data.append(name, file); }
        else if (input.value !== "") data.append(name, input.value);
      }
      return data;  // fetch writes the Content-Type with its boundary
    };
    return {element, value, headers: {}};
  }
  const example = media.example;
  const element = $("textarea", {}, example === undefined ? "" : (typeof example === "string" ? example : pretty(example)));
  return {element, value: () => element.value, headers: {"Content-Type": bodyType}};
}

// Shows an answer as it arrives (a chat stream's deltas one by one); JSON pretty-printed once
// whole; an image as the image; other bytes by their size. A token pair (register, login,
// refresh) goes into the token field, so the next "try it" is signed in.
async function showResponse(response, output, head) {
  const type = response.headers.get("Content-Type") || "";
  if (!/^(text\/|application\/json)/.test(type) && response.status !== 204) {
    const blob = await response.blob();
    output.replaceChildren(head + `(${blob.size} bytes of ${type || "no stated type"})`);
    if (type.startsWith("image/")) output.append("\n", $("img", {src: URL.createObjectURL(blob), alt: "the answer"}));
    return;
  }
  const reader = response.body ? response.body.getReader() : null;
  const decoder = new TextDecoder();
  let raw = "";
  while (reader) {
    const {done, value} = await reader.read();
    if (done) break;
    raw += decoder.decode(value, {stream: true});
    output.textContent = head + raw;
  }
  raw += decoder.decode();
  let answer;
  try { answer = JSON.parse(raw); raw = pretty(answer); } catch (e) { /* not JSON: shown as it is */ }
  output.textContent = head + raw;
  if (response.ok && answer && typeof answer.access_token === "string") {
    tokenInput.value = answer.access_token;
    sessionStorage.setItem("wellmate-token", answer.access_token);
    output.textContent += "\n\n(access_token put in the token field above)";
  }
}

function tryIt(path, method, op) {
  const form = $("div", {class: "try"}, $("h4", {}, "Try it"));
  const inputs = {};
  for (const param of op.parameters || []) {
    const input = $("input", {placeholder: typeOf(param.schema), size: 40});
    inputs[param.name] = [param, input];
    form.append($("div", {}, $("label", {}, `${param.in} ${param.name}${param.required ? " *" : ""} `, input)));
  }
  let body = null;
  if (op.requestBody) {
    const [bodyType] = Object.keys(op.requestBody.content);
    body = bodyEditor(bodyType, op.requestBody.content[bodyType]);
    form.append($("div", {}, `body (${bodyType})`), body.element);
  }
  const output = $("pre", {}, "");
  const send = $("button", {type: "button"}, "Send");
  send.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    for (const [name, [param, input]] of Object.entries(inputs)) {
      if (param.in === "path") url = url.replace(`{${name}}`, encodeURIComponent(input.value));
      else if (input.value !== "") query.set(name, input.value);
    }
    if ([...query].length) url += "?" + query;
    const headers = {...(body ? body.headers : {})};
    const token = tokenInput.value.trim();
    if (token) headers.Authorization = "Bearer " + token;
    output.textContent = `${method.toUpperCase()} ${url}\n…`;
    try {
      const response = await fetch(url, {method: method.toUpperCase(), headers, body: body ? body.value() : undefined});
      await showResponse(response, output, `${response.status} ${response.statusText}\n`);
    } catch (error) {
      output.textContent += "\n" + error;
    }
  });
  form.append(send, output);
  return form;
}

function operation(path, method, op) {
  const who = op.security && op.security.length === 0 ? "public" : (op["x-admin"] ? "admin" : "token");
  const body = $("div");
  if (op.description) body.append($("p", {}, prose(op.description)));
  if (op.parameters && op.parameters.length) {
    const table = $("table", {}, $("tr", {}, $("th", {}, "parameter"), $("th", {}, "in"), $("th", {}, "type"), $("th", {}, "")));
    for (const param of op.parameters) {
      table.append($("tr", {}, $("td", {}, $("code", {}, param.name), param.required ? " *" : ""), $("td", {}, param.in),
                     $("td", {}, schemaLink(param.schema)), $("td", {}, prose(param.description))));
    }
    body.append($("h4", {}, "Parameters"), table);
  }
  if (op.requestBody) body.append($("h4", {}, "Body"), content(op.requestBody.content));
  body.append($("h4", {}, "Answers"));
  for (const [status, response] of Object.entries(op.responses)) {
    body.append($("div", {}, $("b", {}, status), " ", prose(response.description)), content(response.content));
  }
  body.append(tryIt(path, method, op));
  return $("details", {class: "op", id: op.operationId},
           $("summary", {}, $("span", {class: "method " + method}, method.toUpperCase()), " ", $("span", {class: "path"}, path),
             " ", op.summary, $("span", {class: "badge " + who}, who)),
           body);
}

function render() {
  document.getElementById("version").textContent = doc.info.version;
  document.getElementById("description").replaceChildren(prose(doc.info.description));
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push([path, method, op]);
  }
  const nav = document.getElementById("tags"), main = document.getElementById("operations");
  main.textContent = "";
  for (const tag of Object.keys(byTag).sort()) {
    nav.append($("a", {href: "#tag-" + tag}, tag));
    main.append($("h2", {id: "tag-" + tag}, tag));
    for (const [path, method, op] of byTag[tag]) main.append(operation(path, method, op));
  }
  nav.append($("a", {href: "#schemas"}, "schemas"));
  const schemas = document.getElementById("schemas");
  schemas.append($("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    schemas.append($("h3", {id: "schema-" + name}, name), schema.description ? $("p", {}, prose(schema.description)) : "",
                   propertiesTable(schema) || $("pre", {}, pretty(schema)));
  }
}

tokenInput.value = sessionStorage.getItem("wellmate-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("wellmate-token", tokenInput.value));
// The field sits in a form (browsers want a password field in one); Enter there must not reload the page.
document.getElementById("auth").addEventListener("submit", (event) => event.preventDefault());
fetch("/api/v1/openapi.json").then((r) => r.json()).then((d) => { doc = d; render(); })
  .catch((e) => { document.getElementById("operations").textContent = "Could not load /api/v1/openapi.json: " + e; });
