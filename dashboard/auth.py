"""Sign-in for the dashboard, which holds the API token: OIDC through Streamlit's `st.login` when
`.streamlit/secrets.toml` has an [auth] section, else a shared password (`dashboard_password`).
With a token set and neither configured, the dashboard refuses to show anything."""
from __future__ import annotations

import hashlib
import hmac
import time

import streamlit as st

from aiwatch.config import Settings

_SIGNED_IN = "aiwatch_signed_in"


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def password_matches(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths: compare digests of both."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def require_sign_in(settings: Settings) -> None:
    """Stop the script unless the visitor is signed in (or no sign-in is needed: no token set)."""
    if oidc_configured():
        if not st.user.is_logged_in:
            st.title("aiwatch")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        st.sidebar.button("Sign out", on_click=st.logout)
        return
    if settings.dashboard_password:
        if st.session_state.get(_SIGNED_IN):
            st.sidebar.button("Sign out", on_click=lambda: st.session_state.pop(_SIGNED_IN, None))
            return
        st.title("aiwatch")
        with st.form("sign-in"):
            given = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            if password_matches(given, settings.dashboard_password):
                st.session_state[_SIGNED_IN] = True
                st.rerun()
            time.sleep(1)   # slows guessing
            st.error("Wrong password.")
        st.stop()
    if settings.api_token or settings.ingest_token:
        st.title("aiwatch")
        st.error("This dashboard holds the server's API token, so it needs a sign-in: set `dashboard_password` "
                 "(AIWATCH_DASHBOARD_PASSWORD), or configure OIDC in `.streamlit/secrets.toml` ([auth]).")
        st.stop()
