// Every response the helpers receive is checked against the document the Worker serves: the
// schema of the matched (path template, method, status), so no schema can drift from the
// service. A status the operation does not declare fails too.
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

let contract;

/** The served document, compiled once per test file. `fetchDocument` returns its JSON. */
export async function loadContract(fetchDocument) {
  if (!contract) contract = fetchDocument().then(compile);
  return contract;
}

function compile(document) {
  // OpenAPI 3.1 schemas are JSON Schema 2020-12; `strict: false` because the document around
  // them (`paths`, `example`, ...) is not a schema.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema(document, "openapi.json");
  const templates = Object.keys(document.paths).map((template) => ({ template, segments: template.split("/").slice(1) }));
  // Static segments win over parameters, as in the route table (`/v1/keys/verify` before `{id}`).
  templates.sort((a, b) => staticCount(b) - staticCount(a));
  return { document, ajv, templates, validators: new Map() };
}

const staticCount = ({ segments }) => segments.filter((s) => !s.startsWith("{")).length;

function matchTemplate(templates, path) {
  let clean = path.split("?")[0];
  if (clean.length > 1 && clean.endsWith("/")) clean = clean.slice(0, -1);
  const segments = clean.split("/").slice(1);
  const found = templates.find(
    (t) => t.segments.length === segments.length && t.segments.every((s, i) => (s.startsWith("{") ? segments[i] !== "" : s === segments[i])),
  );
  return found?.template;
}

const escapePointer = (part) => part.replaceAll("~", "~0").replaceAll("/", "~1");

/** Follows `$ref`s between response objects; returns [object, its JSON pointer]. */
function resolve(document, node, pointer) {
  while (node && node.$ref) {
    pointer = node.$ref;
    node = pointer
      .slice(2)
      .split("/")
      .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
      .reduce((at, key) => at?.[key], document);
  }
  return [node, pointer];
}

/**
 * The problems of one response, or [] when it keeps the contract. Unknown paths and undeclared
 * methods answer the generic error envelope (404, 405).
 */
export function contractProblems({ document, ajv, templates, validators }, method, path, status, body, text) {
  const template = matchTemplate(templates, path);
  // Methods are case-sensitive but for the six that Fetch normalises: `patch` is not PATCH.
  const normalised = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"].includes(method.toUpperCase());
  const key = normalised || method === method.toUpperCase() ? method.toLowerCase() : undefined;
  const operation = template && key && document.paths[template][key];
  let pointer;
  if (!operation) {
    const expected = template ? 405 : 404;
    if (status !== expected) return [`${method} ${path} is not in the document and answered ${status}, not ${expected}`];
    pointer = "#/components/schemas/Error";
  } else {
    const base = `#/paths/${escapePointer(template)}/${key}/responses`;
    const declared = [String(status), `${String(status)[0]}XX`, "default"].find((k) => k in operation.responses);
    if (!declared) return [`${method} ${template} answered ${status}, which its responses do not declare (${Object.keys(operation.responses)})`];
    const [response, at] = resolve(document, operation.responses[declared], `${base}/${declared}`);
    const content = response.content;
    if (!content) return text === "" ? [] : [`${method} ${template} ${status} declares no body but sent ${text.slice(0, 200)}`];
    if (!content["application/json"]) return [];
    pointer = `${at}/content/application~1json/schema`;
  }
  if (method === "HEAD") return [];
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi.json${pointer}` });
    validators.set(pointer, validate);
  }
  if (validate(body)) return [];
  const errors = validate.errors.slice(0, 8).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
  return [`${method} ${path} ${status} breaks ${pointer}:\n  ${errors.join("\n  ")}\n  body: ${text.slice(0, 500)}`];
}
