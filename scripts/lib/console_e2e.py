"""Drives the audit review page (`/console/`) in a real browser, Debian's
chromium through Playwright (which downloads no browser here), as the
black-box test `console` asks:

    python3 console_e2e.py URL ORGANIZATION SCREENSHOTS_DIR

reads the users to sign in as from the environment (CONSOLE_ADMIN,
CONSOLE_READ_ONLY, CONSOLE_END_USER, and CONSOLE_OTHER_TENANT, an
administrator of another tenant; each `userName:password`) and
CONSOLE_ROLE_CHANGE_USER, the id of a user whose roles changed, and
CONSOLE_PROVIDER_ADMIN, the provider administrator who acted in the tenant. Prints what
it checked; exits 1 at the first failure, with a screenshot of it.
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("IAM_TEST_CHROMIUM", "/usr/bin/chromium")


def credentials(name):
    user, _, password = os.environ[name].partition(":")
    return user, password


def sign_in(page, url, who):
    user, password = credentials(who)
    page.goto(f"{url}/console/")
    page.fill("#user-name", user)
    page.fill("#password", password)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#who")).to_be_visible()
    return user


def main(url, organization, screenshots):
    os.makedirs(screenshots, exist_ok=True)
    role_changed = os.environ["CONSOLE_ROLE_CHANGE_USER"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page = context.new_page()
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        problems = []
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        try:
            answer = page.goto(f"{url}/console/")
            policy = answer.headers.get("content-security-policy", "")
            assert "script-src 'self'" in policy and "default-src 'none'" in policy, policy
            print("the page is served with a Content-Security-Policy: " + policy)

            # An Account Administrator: the timeline.
            sign_in(page, url, "CONSOLE_ADMIN")
            page.select_option("#organization", organization)
            rows = page.locator("#timeline tbody tr")
            expect(rows.first).to_be_visible()
            while page.locator("#older").is_visible():
                page.click("#older")
            told = page.locator("#timeline tbody tr td.type").all_text_contents()
            story = ["UserCreated", "UserRolesChanged", "TokenCreated", "TokenDownloaded",
                     "UserStateChanged", "UserDeleted", "LoginFailed"]
            missing = [kind for kind in story if kind not in told]
            assert not missing, (missing, told)
            actors = page.locator("#timeline").text_content()
            assert os.environ["CONSOLE_PROVIDER_ADMIN"] in actors, "the provider administrator acting"
            print(f"the timeline shows {rows.count()} entries, the whole story: {', '.join(story)}")
            page.screenshot(path=os.path.join(screenshots, "timeline.png"), full_page=True)

            # Filter by type, open an entry, check the highlighted diff.
            page.fill("#types", "UserRolesChanged")
            page.fill("#user-id", role_changed)
            page.click("#filters button[type=submit]")
            expect(page.locator("#timeline tbody tr td.type").first).to_have_text("UserRolesChanged")
            types = page.locator("#timeline tbody tr td.type").all_text_contents()
            assert types and all(t == "UserRolesChanged" for t in types), types
            print(f"filtered to {len(types)} UserRolesChanged entries")
            page.locator("#timeline tbody tr td.type").first.click()
            roles = page.locator('#diff tr[data-field="roles"]')
            expect(roles).to_be_visible()
            before = roles.locator("td.before").text_content()
            after = roles.locator("td.after").text_content()
            assert before != after, (before, after)
            assert page.locator("#diff td.before").evaluate(
                "cell => getComputedStyle(cell).backgroundColor"
            ) != page.locator("#diff td.after").evaluate(
                "cell => getComputedStyle(cell).backgroundColor"
            ), "before and after are highlighted differently"
            print(f"the entry's diff shows roles {before} -> {after}, highlighted")
            page.screenshot(path=os.path.join(screenshots, "entry.png"), full_page=True)

            # The user: history, and as of a moment.
            page.locator("#timeline a.user").first.click()
            expect(page.locator("#history li").first).to_be_visible()
            history = page.locator("#history li").all_text_contents()
            assert any("UserCreated" in line for line in history), history
            assert any("UserRolesChanged" in line for line in history), history
            page.fill("#as-of", "2100-01-01T00:00:00")
            page.click("#as-of-form button[type=submit]")
            expect(page.locator("#as-of-result")).to_contain_text("userName")
            print(f"the user's history has {len(history)} events; asOf answers the user")
            page.screenshot(path=os.path.join(screenshots, "user.png"), full_page=True)

            # Download the filtered view.
            with page.expect_download() as downloaded:
                page.click("#download-csv")
            path = downloaded.value.path()
            with open(path, encoding="utf-8") as csv:
                lines = csv.read().splitlines()
            assert lines[0].startswith("position,time,organization,type"), lines[0]
            assert len(lines) == 1 + len(types) and "UserRolesChanged" in lines[1], lines
            with page.expect_download() as downloaded:
                page.click("#download-jsonl")
            with open(downloaded.value.path(), encoding="utf-8") as jsonl:
                assert len(jsonl.read().splitlines()) == len(types)
            print("the filtered view downloads as CSV and JSON Lines")

            token_in_url = [u for u in requested if "vchs" in u.lower() or "token=" in u.lower()]
            assert not token_in_url, token_in_url
            assert not problems, problems

            # A Read-Only Administrator sees the page; an End User is refused.
            page.click("#sign-out")
            sign_in(page, url, "CONSOLE_READ_ONLY")
            expect(page.locator("#timeline tbody tr").first).to_be_visible()
            print("a Read-Only Administrator sees the timeline")
            page.click("#sign-out")
            sign_in(page, url, "CONSOLE_END_USER")
            expect(page.locator("#refused")).to_be_visible()
            expect(page.locator("#audit")).to_be_hidden()
            print("an End User is refused: " + page.locator("#refused-message").text_content())
            page.screenshot(path=os.path.join(screenshots, "refused.png"), full_page=True)

            # Another tenant's administrator sees its own audit, none of this one's.
            page.click("#sign-out")
            sign_in(page, url, "CONSOLE_OTHER_TENANT")
            expect(page.locator("#timeline tbody tr").first).to_be_visible()
            timeline = page.locator("#timeline").text_content()
            assert "acme.example" not in timeline, timeline
            options = page.locator("#organization option").all_text_contents()
            assert len(options) == 1 and "Acme" not in options[0], options
            print("another tenant's administrator sees only its own audit")
        except Exception:
            page.screenshot(path=os.path.join(screenshots, "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
