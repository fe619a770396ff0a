"""aiwatch dashboard: the Streamlit entry script, router and frame for every page.

Run with `aiwatch dashboard --server URL` (or `streamlit run dashboard/app.py` with
AIWATCH_SERVER_URL set). Pages live in `dashboard/views/`; the sidebar filters live in the URL.
"""
from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` from a checkout without an install
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402
from dashboard.auth import require_sign_in  # noqa: E402

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="aiwatch", page_icon=":material/monitoring:", layout="wide")

PAGES = {
    "Service health": [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
        st.Page(VIEWS / "latency.py", title="Latency", icon=":material/speed:", url_path="latency"),
        st.Page(VIEWS / "errors.py", title="Errors & reliability", icon=":material/error:", url_path="errors"),
        st.Page(VIEWS / "cost.py", title="Cost & tokens", icon=":material/payments:", url_path="cost"),
        st.Page(VIEWS / "resources.py", title="Resources", icon=":material/memory:", url_path="resources"),
    ],
    "Model behaviour": [
        st.Page(VIEWS / "quality.py", title="Quality & confidence", icon=":material/verified:", url_path="quality"),
        st.Page(VIEWS / "drift.py", title="Drift", icon=":material/trending_up:", url_path="drift"),
        st.Page(VIEWS / "review.py", title="Human review", icon=":material/rate_review:", url_path="review"),
        st.Page(VIEWS / "canary.py", title="Canary & shadow", icon=":material/science:", url_path="canary"),
    ],
    "Operate": [
        st.Page(VIEWS / "alerts.py", title="Alerts", icon=":material/notifications:", url_path="alerts"),
        st.Page(VIEWS / "incident.py", title="Incidents", icon=":material/crisis_alert:", url_path="incident"),
        st.Page(VIEWS / "traces.py", title="Traces", icon=":material/account_tree:", url_path="traces"),
        st.Page(VIEWS / "weekly.py", title="Weekly review", icon=":material/summarize:", url_path="weekly"),
    ],
}

require_sign_in(ui.settings())
navigation = st.navigation(PAGES)
ui.sidebar_filters()
navigation.run()
