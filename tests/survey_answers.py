"""One household's answers to the shipped survey (ho-gia-dinh), shared by its tests and bench/surveys.py."""

# typed as a resident would, question by question
ANSWERS = [
    "5",  # members
    "4",  # adults
    "3",  # adults with a smartphone
    "3",  # smartphones
    "1",  # internet: fibre
    "1",  # in the village Zalo group: yes
    "2",  # adults with a payment account
    "3",  # adults with level-2 VNeID
    "4",  # people with an electronic health record
    "1",  # online public services: yes
    "2",  # sells online: no (so the "where" question is skipped)
    "1",  # digital address: yes
    "1, 3",  # help wanted
    "bỏ qua",  # phone
]
