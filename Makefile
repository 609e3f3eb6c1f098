PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done

.PHONY: setup setup-system demo test test-all bench naturelm-tiny clean

$(STAMP): pyproject.toml requirements-data.txt Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install --quiet -e '.[llamacpp]' || \
	  echo "warning: llama-cpp-python did not build (it needs a C/C++ compiler and CMake): quantize='gguf-*' is unavailable and its tests skip"
	$(BIN)/pip install --quiet --no-deps -r requirements-data.txt
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python crabnet==2.0.8
	touch $(STAMP)

setup: $(STAMP)

# Optional system packages (root): headless Chromium for the playground test, Debian data sources
# (UniProt sample; miRBase hairpins and EMBOSS's curated test CDS extracted from their packages without installing
# them); mmseqs2 for the protein-diversity cross-check (tasks/proteins.py, engine="mmseqs2"); openbabel (obabel) for
# AutoDock Vina docking through dockstring (tasks/protein_to_molecule.py, NATURELM_DOCK_SAMPLE).
setup-system:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver mmseqs2-examples mmseqs2 openbabel >/dev/null
	d="$${NATURELM_CACHE:-$(HOME)/.cache/naturelm}/optimir" && mkdir -p "$$d" && cd "$$d" && \
	  apt-get download optimir && dpkg-deb -x optimir_*.deb root
	d="$${NATURELM_CACHE:-$(HOME)/.cache/naturelm}/emboss" && mkdir -p "$$d" && cd "$$d" && \
	  apt-get download emboss-test && dpkg-deb -x emboss-test_*.deb root

# The tour ranks RetroSim's candidates with the model: the RetroSim index is fitted once from ../shared/data/uspto50k
# (or $$NATURELM_USPTO50K) and cached, before the tour starts.
demo: setup
	$(BIN)/naturelm data retrosim
	$(BIN)/naturelm demo

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ''

# NatureLM-tiny from scratch with this repository's pipeline (docs/model-card.md): data -> pretrain (stage A) ->
# sft (stage B) -> sft-gen (stage C, shipped) -> ranking weights tuned on VALID -> evaluation -> checkpoint.
TINY := runs/naturelm-tiny
CKPT := checkpoints/naturelm-tiny
EVAL := OMP_NUM_THREADS=1 $(BIN)/naturelm eval --data data_build/model-tiny
RANKING := OMP_NUM_THREADS=1 $(BIN)/python bench/retro_ranking.py --model $(CKPT) --data data_build/model-tiny --update-results
RETROSIM := $(TINY)/eval-retrosim/predictions
# the weight bench/retro_ranking.py chose on validation reactions (read when the line runs)
RANK_WEIGHT = $$($(BIN)/python -c "import json; print(json.load(open('bench/results/retro_ranking_valid.json'))['best_weight'])")
naturelm-tiny: setup
	$(BIN)/naturelm data build --recipe tiny --out data_build/model-tiny
	OMP_NUM_THREADS=1 $(BIN)/naturelm train pretrain --config configs/naturelm-tiny/pretrain.yaml --out $(TINY)/pretrain
	OMP_NUM_THREADS=1 $(BIN)/naturelm train sft --config configs/naturelm-tiny/sft.yaml --out $(TINY)/sft
	OMP_NUM_THREADS=1 $(BIN)/naturelm train sft --config configs/naturelm-tiny/sft-gen.yaml --out $(TINY)/sft-gen
	mkdir -p $(CKPT) && cp $(TINY)/sft-gen/config.json $(TINY)/sft-gen/model.safetensors $(TINY)/sft-gen/tokenizer.json \
	  $(TINY)/sft-gen/naturelm_tokenizer.json $(TINY)/sft-gen/generation_config.json $(CKPT)/
	$(BIN)/python -c "from naturelm.data.card import record_reproduction as r; \
	  r('$(CKPT)/data_card.json', 'data_build/model-tiny/card.json')"  # sha256 vs the shipped card
	cp data_build/model-tiny/card.json $(CKPT)/data_card.json
	$(EVAL) --model retrosim,retrosim-leakfree --tasks retrosynthesis --out $(TINY)/eval-retrosim
	$(RANKING) --split valid --limit 300 --model-beams 0 --processes 2
	$(BIN)/python -c "import json,sys; p='$(CKPT)/generation_config.json'; c=json.load(open(p)); \
	  c['naturelm_rank_weight']=float(sys.argv[1]); json.dump(c, open(p,'w'), indent=2)" $(RANK_WEIGHT)
	$(RANKING) --split test --weight $(RANK_WEIGHT) --model-beams 0 --processes 2 \
	  --retrosim-predictions $(RETROSIM)/retrosim/retrosynthesis.jsonl
	$(RANKING) --split test --weight $(RANK_WEIGHT) --model-beams 0 --processes 2 --out bench/results/retro_ranking_test_leak-free.json \
	  --retrosim-predictions $(RETROSIM)/retrosim-leakfree/retrosynthesis.jsonl
	$(RANKING) --split test --weight $(RANK_WEIGHT) --model-beams 10 --processes 2 \
	  --out bench/results/retro_ranking_test_beams.json --retrosim-predictions $(RETROSIM)/retrosim/retrosynthesis.jsonl
	OMP_NUM_THREADS=1 $(BIN)/python bench/forward_ranking.py --model $(CKPT) --data data_build/model-tiny --limit 300 \
	  --valid 200 --pool union --model-beams 5 --write-weight --out bench/results/forward_ranking_union.json
	$(EVAL) --model $(CKPT),templates --rank --tasks forward --out $(TINY)/eval-fwd
	OMP_NUM_THREADS=1 $(BIN)/python bench/material_ranking.py --model $(CKPT) --data data_build/model-tiny --split valid \
	  --limit 200 --write-weight --update-results
	$(EVAL) --model $(CKPT),smact --rank --tasks composition_to_material --limit 200 --out $(TINY)/eval-comp
	$(EVAL) --model $(CKPT) --tasks molecule_generation,material_generation,composition_to_material,guide_rna \
	  --limit 200 --out $(TINY)/eval-gen
	$(EVAL) --model $(CKPT) --temperature 0.5 --tasks molecule_generation,material_generation --limit 200 \
	  --out $(TINY)/eval-t05
	$(EVAL) --model $(CKPT) --tasks property_to_molecule --limit 100 --out $(TINY)/eval-p2m
	$(EVAL) --model $(CKPT) --tasks property_optimization,bbb_classification,bbb_optimization,\
	protein_generation,text_to_protein,rna_generation,property_to_material --limit 100 --out $(TINY)/eval-tasks100
	$(EVAL) --model $(CKPT),ligand_retrieval,ligand_random,biopython \
	  --tasks protein_to_molecule,dna_to_protein,protein_to_dna,protein_to_rna --limit 100 --out $(TINY)/eval-cross
	$(EVAL) --model $(CKPT),nispo,openclatura,opsin --tasks smiles_to_iupac,iupac_to_smiles --limit 40 \
	  --out $(TINY)/eval-naming
	OMP_NUM_THREADS=1 $(BIN)/python bench/tiny_curve.py --update-results --stages $(TINY)/sft $(TINY)/sft-gen \
	  --data data_build/model-tiny --limit 50 --weight $(RANK_WEIGHT) \
	  --retrosim-predictions $(RETROSIM)/retrosim/retrosynthesis.jsonl
	$(BIN)/python bench/tiny_eval_summary.py --update-results $(addprefix $(TINY)/,eval-fwd eval-comp eval-gen eval-t05 \
	  eval-p2m eval-tasks100 eval-cross eval-naming)
	$(BIN)/python bench/tiny_card.py --write

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
