"""Authentication, payments, history and audit: allauth (with MFA, social accounts and user
sessions), django-simple-history, django-reversion, django-guardian, django-axes, dj-stripe
and django-payments."""

from .common import *  # noqa: F403
from .common import DJANGO_APPS, DOCTOR, MIDDLEWARE

INSTALLED_APPS = [
    *DJANGO_APPS,
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.google",
    "allauth.mfa",
    "allauth.usersessions",
    "simple_history",
    "reversion",
    "guardian",
    "axes",
    "djstripe",
    "payments",
    *DOCTOR,
]

MIDDLEWARE = [
    *MIDDLEWARE,
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
STRIPE_LIVE_MODE = False
DJSTRIPE_WEBHOOK_SECRET = "whsec_not_secret"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
PAYMENT_HOST = "localhost:8000"
PAYMENT_MODEL = "payments.BasePayment"
PAYMENT_VARIANTS = {"default": ("payments.dummy.DummyProvider", {})}
ROOT_URLCONF = "tests.realworld.urls_accounts"
