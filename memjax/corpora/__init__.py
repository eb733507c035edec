"""Text corpora embedded in memjax (package data; see README.md and NOTICE in this folder)."""
