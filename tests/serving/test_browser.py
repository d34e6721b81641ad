"""The demo page at `/`, driven in headless Chromium: type a text (or pick an image), predict, read the result.

The `browser` fixture (tests/conftest.py) needs Debian's `chromium` and `chromium-driver` (installed by the CI
script) and the `selenium` package.
"""

import os

import serving_toy_models as toy
from demo_page import By
from demo_page import card as _card
from demo_page import wait_for_result as _wait_for_result

from keras_tasks.serving import server


def test_demo_page_classifies_text_and_images(tmp_path, install, browser):
    install(tmp_path, "sst", 1, "text")
    install(tmp_path, "digits", 1, "image")
    (tmp_path / "empty").mkdir()
    with server.ServerThread(server.ServerConfig(model_base_path=str(tmp_path), port=0, poll_seconds=60)) as running:
        browser.get(running.url + "/")
        text_card = _card(browser, "sst")
        assert text_card.find_element(By.TAG_NAME, "h2").text == "sst version 1 · test accuracy 0.900"
        box = text_card.find_element(By.CSS_SELECTOR, "textarea.input-text")
        box.send_keys("a good , good film")
        text_card.find_element(By.CSS_SELECTOR, "button.predict").click()
        (label,) = _wait_for_result(browser, text_card, ".label")
        assert label.text == "Label: positive"
        rows = text_card.find_elements(By.CSS_SELECTOR, ".result tr.prob")
        probabilities = {row.get_attribute("data-label"): float(row.get_attribute("data-value")) for row in rows}
        assert sorted(probabilities) == ["negative", "positive"]
        assert probabilities["positive"] > 0.9 and abs(sum(probabilities.values()) - 1) < 1e-5
        tokens = text_card.find_elements(By.CSS_SELECTOR, ".result .attention .token")
        assert [token.text for token in tokens] == ["a", "good", ",", "good", "film"]
        weights = [float(token.get_attribute("data-weight")) for token in tokens]
        assert weights[1] == weights[3] > weights[0] and abs(sum(weights) - 1) < 1e-5

        image_card = _card(browser, "digits")
        image_card.find_element(By.CSS_SELECTOR, "button.predict").click()  # no file yet: the page says so
        (error,) = _wait_for_result(browser, image_card, ".error")
        assert error.text == "choose a file first"
        assert not image_card.find_elements(By.CSS_SELECTOR, "select.signature")  # serving_pixels is not for a page
        picture = tmp_path / "bright.png"
        picture.write_bytes(toy.png_bytes(250, size=8))
        image_card.find_element(By.CSS_SELECTOR, "input.input-file").send_keys(str(picture))
        image_card.find_element(By.CSS_SELECTOR, "button.predict").click()
        (label,) = _wait_for_result(browser, image_card, ".label")
        assert label.text == "Label: bright"
        assert [row.get_attribute("data-label") for row in image_card.find_elements(By.CSS_SELECTOR, "tr.prob")] == [
            "dark",
            "bright",
        ]

        assert "Not available" in _card(browser, "empty").text
        if os.environ.get("SERVING_SCREENSHOT"):  # for a person checking the layout
            browser.save_screenshot(os.environ["SERVING_SCREENSHOT"])
