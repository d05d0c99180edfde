from django import forms

from clinical.instruments import PHQ9, PHQ9_DIFFICULTY
from selfreport.models import Schedule


class PlanForm(forms.Form):
    schedule = forms.ChoiceField(
        label="Invite the patient to self-report (PHQ-9 by email)", choices=Schedule.choices,
        error_messages={"invalid_choice": "Choose when to invite the patient."},
    )

    def clean_schedule(self) -> Schedule:
        return Schedule(self.cleaned_data["schedule"])


class SelfReportForm(forms.Form):
    """The patient's PHQ-9: the nine items and the difficulty question, in the patient's words
    (SPEC §1), from clinical.instruments as the clinicians' form."""

    QUESTION = "Over the last 2 weeks, how often have you been bothered by any of the following?"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for item in PHQ9.items:
            self.fields[f"item_{item.number}"] = forms.TypedChoiceField(
                label=item.label, coerce=int, widget=forms.RadioSelect,
                choices=list(item.anchors.items()),
                error_messages={
                    "required": f"Please answer question {item.number}.",
                    "invalid_choice": f"Please answer question {item.number}.",
                },
            )
        self.fields["difficulty"] = forms.ChoiceField(
            label="If you checked off any problems, how difficult have these problems made it "
            "for you to do your work, take care of things at home, or get along with other "
            "people?",
            choices=PHQ9_DIFFICULTY, widget=forms.RadioSelect, required=False,
            error_messages={"invalid_choice": "Please choose one of the answers."},
        )

    def items(self) -> list:
        return [self[f"item_{item.number}"] for item in PHQ9.items]

    def clean(self):
        data = super().clean()
        answers = [data.get(f"item_{item.number}") for item in PHQ9.items]
        if None not in answers:
            data["items"] = answers
        return data
