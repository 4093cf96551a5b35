// ``name=value`` a line: how a few name-to-text maps are typed (a template's default values, the
// fields a journey's update sets). A line without "=" (or starting with one) is ignored.

export function pairsText(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([name, value]) => `${name}=${value}`)
    .join("\n");
}

export function pairsOf(text: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) found[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return found;
}
