// DOM helpers shared by every page: creating elements (el) and links that can only point to the
// office or to http(s) pages (safeHref, link).

/**
 * A new `tag` element. `props` is either a class name or an object of attributes; `text`, when not
 * null or undefined, becomes its text content.
 */
export function el(tag, props, text) {
  const node = document.createElement(tag);
  if (props && typeof props === "object") {
    for (const [name, value] of Object.entries(props)) node.setAttribute(name, value);
  } else if (props) {
    node.className = props;
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Only links within the office or to http(s) pages (a source's URL is data, never script). */
export function safeHref(href) {
  const value = String(href || "");
  if (value.startsWith("#") || (value.startsWith("/") && !value.startsWith("//"))) return value;
  try {
    const url = new URL(value, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
  } catch (err) {
    return "";
  }
}

/** An <a> to `href` when it is safe, else a plain <span> with the same text and class. */
export function link(href, text, className) {
  const safe = safeHref(href);
  if (!safe) return el("span", className, text);
  const a = el("a", className, text);
  a.href = safe;
  return a;
}
