PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done

.PHONY: setup setup-system demo test test-all bench naturelm-tiny clean

$(STAMP): pyproject.toml requirements-data.txt Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -r requirements-data.txt
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python crabnet==2.0.8
	touch $(STAMP)

setup: $(STAMP)

# Optional system packages (root): headless Chromium for the playground test, Debian data sources
# (UniProt sample; miRBase hairpins extracted from the optimir package without installing it).
setup-system:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver mmseqs2-examples >/dev/null
	d="$${NATURELM_CACHE:-$(HOME)/.cache/naturelm}/optimir" && mkdir -p "$$d" && cd "$$d" && \
	  apt-get download optimir && dpkg-deb -x optimir_*.deb root

demo: setup
	$(BIN)/naturelm demo

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ''

# NatureLM-tiny from scratch with this repository's pipeline (docs/model-card.md): data -> pretrain -> sft (stages
# B, C on the v1 instruction set; D on the current one) -> rank weight tuned on VALID -> evaluation -> checkpoint.
TINY := runs/naturelm-tiny
RANK_WEIGHT ?= 5.0
EVAL_LIMIT ?= 200
naturelm-tiny: setup
	$(BIN)/naturelm data build --recipe configs/naturelm-tiny/data-v1.yaml --out data_build/model-tiny-v1
	$(BIN)/naturelm data build --recipe tiny --out data_build/model-tiny
	OMP_NUM_THREADS=1 $(BIN)/naturelm train pretrain --config configs/naturelm-tiny/pretrain.yaml --out $(TINY)/pretrain
	OMP_NUM_THREADS=1 $(BIN)/naturelm train sft --config configs/naturelm-tiny/sft.yaml --out $(TINY)/sft
	OMP_NUM_THREADS=1 $(BIN)/naturelm train sft --config configs/naturelm-tiny/sft-long.yaml --out $(TINY)/sft-long
	OMP_NUM_THREADS=1 $(BIN)/naturelm train sft --config configs/naturelm-tiny/sft-final.yaml --out $(TINY)/sft-final
	mkdir -p checkpoints/naturelm-tiny && cp $(TINY)/sft-final/config.json $(TINY)/sft-final/model.safetensors \
	  $(TINY)/sft-final/tokenizer.json $(TINY)/sft-final/naturelm_tokenizer.json checkpoints/naturelm-tiny/
	$(BIN)/python -c "import json,sys; p='$(TINY)/sft-final/generation_config.json'; c=json.load(open(p)); \
	  c['naturelm_rank_weight']=float(sys.argv[1]); json.dump(c, open('checkpoints/naturelm-tiny/generation_config.json','w'), indent=2)" $(RANK_WEIGHT)
	cp data_build/model-tiny/card.json checkpoints/naturelm-tiny/data_card.json
	$(BIN)/naturelm eval --model retrosim --tasks retrosynthesis --data data_build/model-tiny --out $(TINY)/eval-retrosim
	OMP_NUM_THREADS=1 $(BIN)/python bench/retro_ranking.py --model checkpoints/naturelm-tiny --data data_build/model-tiny \
	  --split valid --limit 300 --model-beams 0 --processes 2
	OMP_NUM_THREADS=1 $(BIN)/python bench/retro_ranking.py --model checkpoints/naturelm-tiny --data data_build/model-tiny \
	  --split test --weight $(RANK_WEIGHT) --model-beams 0 --processes 2 \
	  --retrosim-predictions $(TINY)/eval-retrosim/predictions/retrosim/retrosynthesis.jsonl
	OMP_NUM_THREADS=1 $(BIN)/naturelm eval --model checkpoints/naturelm-tiny,retrosim,nispo,openclatura,opsin --rank \
	  --rank-weight $(RANK_WEIGHT) --tasks all --limit $(EVAL_LIMIT) --data data_build/model-tiny --out $(TINY)/eval

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
