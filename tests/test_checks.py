"""Per-task answer checks: each wrong-answer kind is labelled failing (naturelm.tasks.checks), in the API too."""
from __future__ import annotations

import shutil

import pytest

from naturelm.errors import EntityError
from naturelm.generate.postprocess import Check, Generation, to_generation, verdict
from naturelm.tasks import checks

pytestmark = pytest.mark.usefixtures("one_thread")

SUZUKI = "OB(O)c1ccccc1.Brc1ccccn1"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
DNA = "ATGCTGACCGGTTACAGGCTAGCTAGCTGGACCTAGGTCGAGG"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="OPSIN needs Java")


def gen(tag: str | None, entity: str, close: bool = True) -> Generation:
    raw = f"<{tag}>{entity}</{tag}>" if tag and close else (f"<{tag}>{entity}" if tag else entity)
    return to_generation(raw, -1.0, expect=tag)


def test_verdict_separates_parsing_from_meeting_the_request():
    ok, bad, undecided = Check("a", True), Check("b", False), Check("c", None)
    info = Check("d", None, required=False)
    assert verdict(True, []) is True and verdict(False, []) is False  # no checks: parsing is the request
    assert verdict(True, [ok, info]) is True
    assert verdict(True, [ok, bad]) is False and verdict(False, [ok]) is False
    assert verdict(True, [ok, undecided]) is None  # parses, but unverified
    g = gen("mol", "CCO")
    g.checks = [bad]
    d = g.to_dict()
    assert d["valid"] is True and d["meets_request"] is False and d["checks"][0]["name"] == "b"


def test_atom_balance_of_forward_and_retro_answers():
    right, wrong = gen("product", "c1ccc(-c2ccccn2)cc1"), gen("product", "Sc1ccc(-c2ccccn2)cc1")
    checks.check_forward(SUZUKI, [right, wrong])
    assert right.meets_request is True and right.check("atom_balance").passed
    c = wrong.check("atom_balance")
    assert wrong.valid and wrong.meets_request is False and c.value == {"S": 1} and "1 S" in c.detail
    # retrosynthesis: the product's two chlorines cannot come from reactants holding one
    product = "Clc1ccc(Cl)cc1"
    good, bad = gen("reactants", "Clc1ccc(Br)cc1.[Cl-]"), gen("reactants", "Clc1ccccc1")
    checks.check_retrosynthesis(product, [good, bad])
    assert good.meets_request is True and bad.check("atom_balance").value == {"Cl": 1}
    itself = gen("reactants", "Clc1ccc(Cl)cc1.N")  # atom-balanced, but the product is its own reactant
    checks.check_retrosynthesis(product, [itself])
    assert itself.check("atom_balance").passed and itself.check("not_the_product").passed is False
    assert itself.meets_request is False
    broken = gen("reactants", "C1CC")  # does not parse: fails, never "meets"
    checks.check_retrosynthesis(product, [broken])
    assert not broken.valid and broken.meets_request is False


def test_property_targets_report_achieved_values():
    from naturelm.tasks.property_to_molecule import measure

    g, far = gen("mol", "CCO"), gen("mol", "CCO")
    qed = measure("CCO", "QED")
    checks.check_property_targets({"QED": round(qed, 2)}, [g])
    checks.check_property_targets({"QED": 0.9}, [far])
    assert g.meets_request is True and g.check("QED").value == pytest.approx(qed, abs=1e-4)
    c = far.check("QED")
    assert far.meets_request is False and c.target == 0.9 and c.value == pytest.approx(qed, abs=1e-4)


def test_optimisation_must_change_the_molecule_and_move_the_right_way():
    from naturelm.tasks.property_to_molecule import measure

    start = "CCOc1ccccc1C(=O)O"
    same, up, down = gen("mol", start), gen("mol", "CCCCCCOc1ccccc1C(=O)O"), gen("mol", "OCCOc1ccccc1C(=O)O")
    checks.check_optimization(start, "LogP", "decrease", 0.5, [same, up, down])
    assert same.check("changed").passed is False and same.meets_request is False
    assert up.check("LogP").passed is False and "wrong direction" in up.check("LogP").detail
    assert measure("OCCOc1ccccc1C(=O)O", "LogP") < measure(start, "LogP") - 0.5
    assert down.meets_request is True and down.check("LogP").value == pytest.approx(
        measure("OCCOc1ccccc1C(=O)O", "LogP"), abs=1e-4)
    sim = down.check("similarity")
    assert sim.required is False and 0.0 < sim.value < 1.0


def test_guides_report_their_target_site_or_not_in_target():
    from naturelm.tasks.guide_rna import find_target_site

    # DNA[7:27] is followed by "TGG" (an NGG PAM) in DNA[27:30]
    spacer = DNA[7:27]
    assert DNA[27:30] == "TGG" and find_target_site(spacer.replace("T", "U"), DNA).position == 7
    hit, absent = gen("rna", spacer.replace("T", "U")), gen("rna", "GGGGGGGGGGGGGGGGGGGG")
    checks.check_guides(DNA, [hit, absent])
    assert hit.meets_request is True and hit.check("target_site").value == {"position": 7, "strand": "+", "pam": "TGG"}
    assert absent.valid and absent.meets_request is False and "not in target" in absent.check("target_site").detail
    # the reverse strand: position on the reverse complement
    rc = DNA.translate(str.maketrans("ACGT", "TGCA"))[::-1]
    site = find_target_site(rc[5:25], DNA)  # followed by CCT there: in the target, but no PAM
    assert (site.position, site.strand, site.pam, site.has_pam) == (5, "-", "CCT", False)
    no_pam = gen("rna", rc[5:25].replace("T", "U"))
    checks.check_guides(DNA, [no_pam])
    assert no_pam.meets_request is False and "not NGG" in no_pam.check("target_site").detail


def test_truncated_protein_is_not_a_success():
    cut, done = gen("protein", "MKTAYIAKQRQISFVKSHFSRQ", close=False), gen("protein", "MKTAYIAKQRQISFVKSHFSRQ")
    checks.check_proteins(None, [cut, done])
    assert cut.check("finished").passed is False and cut.meets_request is False and "truncated at 22" in \
        cut.check("finished").detail
    assert done.meets_request is True and done.check("length").value == 22
    wish = gen("protein", "MKTAYIAKQRQISFVKSHFSRQ")
    checks.check_proteins("binds ATP", [wish])  # a free-text wish no tool checks: unverified, not a success
    assert wish.meets_request is None and "unverified" in wish.check("description").detail


def test_materials_element_fidelity_and_smact_with_and_without_the_alloy_shortcut():
    from naturelm.language.codecs import smact_valid
    from naturelm.tasks.metrics import element_fidelity

    assert element_fidelity(["Li", "Fe", "P", "O"], "LiFePO4") == (1.0, 1.0)
    assert element_fidelity(["Li", "Fe", "P", "O"], "Fe2O3") == (1.0, 0.5)  # 2 of 2 requested; 2 of 4 present
    assert element_fidelity(["Li", "O"], "NaCl") == (0.0, 0.0) and element_fidelity(["Li"], "Xx(") == (0.0, 0.0)
    assert smact_valid("Fe3Al") and not smact_valid("Fe3Al", alloy_shortcut=False)
    assert smact_valid("LiFePO4", alloy_shortcut=False)
    right, wrong = gen("material", "Li Fe P O O O O <sg62>"), gen("material", "Fe Fe O O O <sg167>")
    checks.check_materials(["Li", "Fe", "P", "O"], None, None, [right, wrong])
    assert right.meets_request is True
    assert wrong.valid and wrong.meets_request is False and wrong.check("elements").value["recall"] == 0.5
    alloy = gen("material", "Fe Fe Fe Al <sg221>")
    checks.check_materials(None, None, None, [alloy])
    assert alloy.check("smact").passed and alloy.check("smact_strict").passed is False and alloy.meets_request
    target = gen("material", "Li Fe P O O O O <sg62>")
    checks.check_materials(None, "band_gap", 1.5, [target])
    assert target.meets_request is None  # no offline model checks a band gap


def test_classification_needs_a_tagged_entity_and_reports_the_oracle(lm):
    with pytest.raises(EntityError, match="no tagged entity"):
        lm.classify_checked("Does dopamine cross the blood-brain barrier?")
    other = lm.classify_checked("Is <mol>CCO</mol> sweet?")
    assert other.meets_request is None and "no oracle" in other.checks[0].detail
    oracle, why = checks.oracle_or_reason("bbb")
    if oracle is None:
        pytest.skip(why)
    c = lm.classify_checked("Can <mol>NCCc1ccc(O)c(O)c1</mol> cross the blood-brain barrier?")
    p = oracle.predict(["NCCc1ccc(O)c(O)c1"])[0]
    assert c.checks[0].value == pytest.approx(p, abs=1e-3) and f"{oracle.heldout_auroc:.3f}" in c.checks[0].detail
    assert c.checks[0].passed == ((p >= 0.5) == (c.p_yes >= 0.5))


# ------------------------------------------------------------------------------ the API labels wrong answers
def _answering(lm, monkeypatch, raws: list[str]):
    """Make the model answer `raws` (as if generated) to whatever it is asked."""
    def fake(prompts, n=1, num_beams=1, expect=None, **_):
        row = [to_generation(r, -float(i), expect=expect) for i, r in enumerate(raws)]
        return row if isinstance(prompts, str) else [list(row) for _ in prompts]

    monkeypatch.setattr(lm, "generate", fake)


def test_api_labels_each_wrong_answer_kind(lm, monkeypatch):
    _answering(lm, monkeypatch, ["<product>Sc1ccc(-c2ccccn2)cc1</product>"])
    assert lm.forward(SUZUKI, k=1)[0].meets_request is False
    _answering(lm, monkeypatch, ["<reactants>Clc1ccccc1</reactants>"])
    assert lm.retrosynthesis("Clc1ccc(Cl)cc1", k=1, method="model")[0].meets_request is False
    _answering(lm, monkeypatch, ["<rna>GGGGGGGGGGGGGGGGGGGG</rna>"])
    g = lm.guide_rna(DNA, n=1)[0]
    assert g.valid and g.meets_request is False
    _answering(lm, monkeypatch, ["<mol>CCOc1ccccc1C(=O)O</mol>"])
    g = lm.optimize_molecule("CCOc1ccccc1C(=O)O", "increase QED", n=1)[0]
    assert g.valid and g.meets_request is False and g.check("changed").passed is False
    _answering(lm, monkeypatch, ["<mol>CCO</mol>"])
    g = lm.generate_molecules(n=1, QED=0.9)[0]
    assert g.meets_request is False and g.check("QED").target == 0.9
    _answering(lm, monkeypatch, ["<protein>MKTAYIAKQRQISFVKSHFSRQ"])
    g = lm.design_protein(None, n=1)[0]
    assert g.meets_request is False and g.check("finished").passed is False
    _answering(lm, monkeypatch, ["<material>Fe Fe O O O <sg167></material>"])
    g = lm.design_material(elements=["Li", "Fe", "P", "O"], n=1, method="model")[0]
    assert g.valid and g.meets_request is False


@needs_java
def test_api_name_to_structure_registry_before_the_model(lm, monkeypatch):
    pytest.importorskip("py2opsin")
    _answering(lm, monkeypatch, ["<mol>O=S(=O)(O)O</mol>", "<mol>O=[N+]([O-])c1ccc(Cl)cc1</mol>"])
    got = lm.iupac_to_smiles("aspirin", k=3)
    assert got[0].canonical == ASPIRIN and got[0].source == "registry" and got[0].meets_request is True
    assert [g.meets_request for g in got[1:]] == [False, False] and all(g.source == "model" for g in got[1:])
    got = lm.iupac_to_smiles("zorblaxamine", k=3)
    assert got and all(g.meets_request is None for g in got)  # the model's guess, unverified
    _answering(lm, monkeypatch, ["2-ethoxybenzoic acid", "propan-2-ol"])
    names = lm.smiles_to_iupac("CCO", k=5, method="model")
    assert all(g.check("opsin_round_trip").passed is False and g.meets_request is False for g in names)


# ------------------------------------------------------------------------------ the server labels wrong answers
WRONG = {  # task endpoint, request, what the model answers (a wrong answer of the kind the issue lists)
    "forward": ({"reactants": SUZUKI}, "<product>Sc1ccc(-c2ccccn2)cc1</product>"),
    "retrosynthesis": ({"product": "Clc1ccc(Cl)cc1", "method": "model", "k": 1}, "<reactants>Clc1ccccc1</reactants>"),
    "guide_rna": ({"dna": DNA, "n": 1}, "<rna>GGGGGGGGGGGGGGGGGGGG</rna>"),
    "optimize_molecule": ({"smiles": "CCOc1ccccc1C(=O)O", "goal": "decrease LogP", "n": 1},
                          "<mol>CCCCCCOc1ccccc1C(=O)O</mol>"),
    "generate_molecules": ({"properties": {"QED": 0.9}, "n": 1}, "<mol>CCO</mol>"),
    "design_protein": ({"description": "", "n": 1}, "<protein>MKTAYIAKQRQISFVKSHFSRQ"),
    "design_material": ({"elements": ["Li", "Fe", "P", "O"], "n": 1, "method": "model"},
                        "<material>Fe Fe O O O <sg167></material>"),
}


@pytest.fixture(scope="module")
def wrong_client(tiny_checkpoint):
    """A server whose model answers each task with a wrong answer (WRONG) whatever it is asked."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from naturelm.api import NatureLM
    from naturelm.serve.app import ServeConfig, create_app

    lm = NatureLM.load(tiny_checkpoint)
    lm.answer_for = None

    def fake(prompts, n=1, num_beams=1, expect=None, **_):
        raw = lm.answer_for
        row = [to_generation(raw, -1.0, expect=expect)]
        return row if isinstance(prompts, str) else [list(row) for _ in prompts]

    lm.generate = fake
    with TestClient(create_app(lm, ServeConfig(model_name="wrong"))) as c:
        c.lm = lm
        yield c


@pytest.mark.parametrize("task", sorted(WRONG))
def test_server_labels_wrong_answers_as_failing(wrong_client, task):
    body, raw = WRONG[task]
    wrong_client.lm.answer_for = raw
    r = wrong_client.post(f"/v1/tasks/{task}", json=body)
    assert r.status_code == 200, r.text
    (g,) = r.json()["results"]
    assert g["meets_request"] is False and any(c["passed"] is False for c in g["checks"]) and g["source"]


def test_server_classify_without_a_tagged_entity_is_422(wrong_client):
    r = wrong_client.post("/v1/tasks/classify", json={"question": "Does dopamine cross the blood-brain barrier?"})
    assert r.status_code == 422 and "no tagged entity" in r.json()["error"]["message"]


def test_server_protein_default_budget_is_the_servers_maximum(wrong_client, monkeypatch):
    seen = {}

    def spy(prompts, n=1, num_beams=1, expect=None, max_new_tokens=None, **_):
        seen["max_new_tokens"] = max_new_tokens
        return [to_generation("<protein>MKV</protein>", -1.0, expect=expect)]

    monkeypatch.setattr(wrong_client.lm, "generate", spy)
    r = wrong_client.post("/v1/tasks/design_protein", json={"description": "", "n": 1})
    assert r.status_code == 200 and seen["max_new_tokens"] == wrong_client.app.state.config.max_new_tokens
    (g,) = r.json()["results"]
    assert g["meets_request"] is True and next(c for c in g["checks"] if c["name"] == "finished")["passed"]


# ------------------------------------------------------------------------------ the playground shows them failing
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
FORMS = {  # the playground's form values for each WRONG request
    "forward": {"reactants": SUZUKI, "k": "1"},
    "retrosynthesis": {"product": "Clc1ccc(Cl)cc1", "k": "1"},
    "guide_rna": {"dna": DNA, "n": "1"},
    "optimize_molecule": {"smiles": "CCOc1ccccc1C(=O)O", "goal": "decrease LogP", "n": "1"},
    "generate_molecules": {"properties": "QED=0.9", "n": "1"},
    "design_protein": {"description": "", "n": "1"},
    "design_material": {"elements": "Li, Fe, P, O", "property": "", "target": "", "n": "1", "method": "model"},
}


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium + chromium-driver (make setup-system)")
def test_playground_shows_wrong_answers_failing_with_their_source(wrong_client, tmp_path):
    pytest.importorskip("selenium")
    import threading
    import time

    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from naturelm.serve.app import ServeConfig, create_app

    server = uvicorn.Server(uvicorn.Config(create_app(wrong_client.lm, ServeConfig(model_name="wrong")),
                                           host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 30).until(lambda d: "ready" in d.find_element(By.ID, "status").text)
        for task, values in FORMS.items():
            wrong_client.lm.answer_for = WRONG[task][1]
            driver.execute_script("const t = document.getElementById('task'); t.value = arguments[0];"
                                  "t.dispatchEvent(new Event('change'));"
                                  "for (const [k, v] of Object.entries(arguments[1])) document.getElementById('f-' + k).value = v;",
                                  task, values)
            driver.find_element(By.ID, "run").click()
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card.result")
                                            or d.find_element(By.ID, "error").is_displayed())
            assert not driver.find_element(By.ID, "error").is_displayed(), driver.find_element(By.ID, "error").text
            (card,) = driver.find_elements(By.CSS_SELECTOR, ".card.result")
            assert "failed" in card.get_attribute("class").split(), task
            assert card.find_element(By.CSS_SELECTOR, ".verdict").text == "fails checks"
            assert card.find_element(By.CSS_SELECTOR, ".source").text == "source: model"
            assert card.find_elements(By.CSS_SELECTOR, "li.check.fail"), task
        driver.save_screenshot(str(tmp_path / "failing.png"))
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
