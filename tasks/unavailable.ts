/**
 * Entry point of the tasks whose features have not landed yet: one line saying so, exit code 2.
 * Never a stub that pretends to work. Each line names the issue that will bring the feature.
 */
const planned: Readonly<Record<string, string>> = {
  predict: "inference and outputs land with issue #8",
};

const name = Deno.args[0] ?? "";
const why = planned[name] ?? "unknown task";
console.error(`ivaan: 'deno task ${name}' is not available yet: ${why}.`);
Deno.exit(2);
