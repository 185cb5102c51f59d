# The two commands of the README, plus a few conveniences. Every target sets up ./.venv first (cached).
.PHONY: studio test venv lint bench

venv:
	@bash scripts/ensure-venv.sh

studio: venv
	.venv/bin/python app.py

test: venv
	bash scripts/ensure-browser.sh
	bash scripts/test.sh

lint: venv
	.venv/bin/ruff check .
