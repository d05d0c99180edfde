from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class LoginForm(AuthenticationForm):
    """Django's login form, refusing a user name longer than any user's before it is looked up.

    Django only sets the field's ``max_length`` for the browser; a longer name typed by hand went
    on to the failed-login records (django-axes keeps 255 characters), which PostgreSQL refused
    with an error page.
    """

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))
