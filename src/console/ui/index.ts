/**
 * The console's page, script and style, inlined as text (no file reads at run time). The k-ui
 * part of issue 17 replaces these placeholders with the real page; the server (src/console/)
 * serves them at `<path>/console`, `<path>/console/app.js` and `<path>/console/app.css`.
 */

/** The page: no data in it; the script loads everything after sign-in. */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>events-library console</title>
<link rel="stylesheet" href="console/app.css">
</head>
<body>
<main id="app"><h1>events-library console</h1></main>
<script type="module" src="console/app.js"></script>
</body>
</html>
`;

/** The page's one script (placeholder). */
export const CONSOLE_JS = `// events-library console: placeholder script\n`;

/** The page's style (placeholder). */
export const CONSOLE_CSS = `body { font-family: system-ui, sans-serif; }\n`;
