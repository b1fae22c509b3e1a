// Removes dist/ before a build, so that no stale file is published.
require('node:fs').rmSync(require('node:path').join(__dirname, '..', 'dist'), { recursive: true, force: true });
