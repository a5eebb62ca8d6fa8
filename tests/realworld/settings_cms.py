"""CMS: django CMS 5 with filer, easy-thumbnails, djangocms-text, -link and -frontend."""

from .common import *  # noqa: F403
from .common import CONTEXT_PROCESSORS, DJANGO_APPS, DOCTOR, MIDDLEWARE

FRONTEND = [
    "accordion", "alert", "badge", "card", "carousel", "collapse", "content", "grid", "icon",
    "image", "jumbotron", "link", "listgroup", "media", "navigation", "tabs", "utilities",
]  # fmt: skip

INSTALLED_APPS = [
    "djangocms_admin_style",
    *DJANGO_APPS,
    "django.contrib.sites",
    "cms",
    "menus",
    "treebeard",
    "sekizai",
    "djangocms_text",
    "djangocms_link",
    "djangocms_frontend",
    *(f"djangocms_frontend.contrib.{name}" for name in FRONTEND),
    "filer",
    "easy_thumbnails",
    *DOCTOR,
]

MIDDLEWARE = [
    *MIDDLEWARE,
    "django.middleware.locale.LocaleMiddleware",
    "cms.middleware.user.CurrentUserMiddleware",
    "cms.middleware.page.CurrentPageMiddleware",
    "cms.middleware.toolbar.ToolbarMiddleware",
    "cms.middleware.language.LanguageCookieMiddleware",
]
CONTEXT_PROCESSORS += [
    "django.template.context_processors.i18n",
    "sekizai.context_processors.sekizai",
    "cms.context_processors.cms_settings",
]
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
CMS_CONFIRM_VERSION4 = True
CMS_TEMPLATES = [("realworld_cms.html", "Page")]
X_FRAME_OPTIONS = "SAMEORIGIN"
THUMBNAIL_PROCESSORS = (
    "easy_thumbnails.processors.colorspace",
    "easy_thumbnails.processors.autocrop",
    "filer.thumbnail_processors.scale_and_crop_with_subject_location",
    "easy_thumbnails.processors.filters",
)
ROOT_URLCONF = "tests.realworld.urls_cms"
TEMPLATES[0]["DIRS"] = [str(BASE_DIR / "templates")]  # noqa: F405
