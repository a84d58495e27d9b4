"""Windows events as their providers lay them out, for the lab and the tests.

Field names and order follow the published layouts: Sysmon's event schema (Sysinternals,
"Sysmon" page, events 1, 10, 11), Microsoft Learn's Security auditing reference (4688, 4698,
4720, 4732), the PowerShell logging events (4103/4104 in Microsoft-Windows-PowerShell/
Operational; 800 in Windows PowerShell, whose data is unnamed), System 7045 (service
installed) and Microsoft-Windows-TaskScheduler/Operational 106/129/200.
"""

from __future__ import annotations

from datetime import datetime

from exhunt.lab.evtx_writer import EventSpec

SECURITY = ("Security", "Microsoft-Windows-Security-Auditing")
SYSMON = ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")
PS_OPERATIONAL = ("Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell")
PS_CLASSIC = ("Windows PowerShell", "PowerShell")
SYSTEM = ("System", "Service Control Manager")
TASKS = ("Microsoft-Windows-TaskScheduler/Operational", "Microsoft-Windows-TaskScheduler")

_SUBJECT = {"SubjectUserSid": "S-1-5-18", "SubjectUserName": "EX01$",
            "SubjectDomainName": "CORP", "SubjectLogonId": "0x3e7"}


def _event(source: tuple[str, str], event_id: int, when: datetime,
           data: dict[str, str] | list[str], computer: str = "ex01.corp.example") -> EventSpec:
    return EventSpec(source[0], source[1], event_id, 4, when, computer, data)


def sysmon_process(when: datetime, image: str, command: str, parent: str,
                   parent_command: str = "", user: str = "NT AUTHORITY\\SYSTEM") -> EventSpec:
    return _event(SYSMON, 1, when, {
        "RuleName": "-", "UtcTime": f"{when:%Y-%m-%d %H:%M:%S.000}",
        "ProcessGuid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}", "ProcessId": "4242",
        "Image": image, "FileVersion": "-", "Description": "-", "Product": "-",
        "Company": "-", "OriginalFileName": image.rsplit("\\", 1)[-1], "CommandLine": command,
        "CurrentDirectory": "C:\\Windows\\system32\\", "User": user,
        "LogonGuid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}", "LogonId": "0x3e7",
        "TerminalSessionId": "0", "IntegrityLevel": "System", "Hashes": "SHA256=00",
        "ParentProcessGuid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd8}",
        "ParentProcessId": "3120", "ParentImage": parent,
        "ParentCommandLine": parent_command or parent, "ParentUser": user})


def sysmon_process_access(when: datetime, source: str, target: str, access: str,
                          call_trace: str = "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4"
                          ) -> EventSpec:
    return _event(SYSMON, 10, when, {
        "RuleName": "-", "UtcTime": f"{when:%Y-%m-%d %H:%M:%S.000}",
        "SourceProcessGUID": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
        "SourceProcessId": "5120", "SourceThreadId": "5124", "SourceImage": source,
        "TargetProcessGUID": "{5770385f-c22a-43e0-bf4c-06f5698ffbd1}",
        "TargetProcessId": "652", "TargetImage": target, "GrantedAccess": access,
        "CallTrace": call_trace, "SourceUser": "NT AUTHORITY\\SYSTEM",
        "TargetUser": "NT AUTHORITY\\SYSTEM"})


def sysmon_file_create(when: datetime, image: str, target: str) -> EventSpec:
    return _event(SYSMON, 11, when, {
        "RuleName": "-", "UtcTime": f"{when:%Y-%m-%d %H:%M:%S.000}",
        "ProcessGuid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}", "ProcessId": "5120",
        "Image": image, "TargetFilename": target,
        "CreationUtcTime": f"{when:%Y-%m-%d %H:%M:%S.000}", "User": "NT AUTHORITY\\SYSTEM"})


def security_process(when: datetime, image: str, command: str, parent: str) -> EventSpec:
    return _event(SECURITY, 4688, when, {
        **_SUBJECT, "NewProcessId": "0x1a2c", "NewProcessName": image,
        "TokenElevationType": "%%1936", "ProcessId": "0xc30", "CommandLine": command,
        "TargetUserSid": "S-1-0-0", "TargetUserName": "-", "TargetDomainName": "-",
        "TargetLogonId": "0x0", "ParentProcessName": parent,
        "MandatoryLabel": "S-1-16-16384"})


def task_created(when: datetime, name: str, command: str, arguments: str = "") -> EventSpec:
    content = ('<?xml version="1.0" encoding="UTF-16"?><Task version="1.2" xmlns="http://'
               'schemas.microsoft.com/windows/2004/02/mit/task"><Actions Context="Author">'
               f"<Exec><Command>{command}</Command><Arguments>{arguments}</Arguments></Exec>"
               "</Actions></Task>")
    return _event(SECURITY, 4698, when, {**_SUBJECT, "TaskName": name, "TaskContent": content})


def account_created(when: datetime, name: str, sid: str) -> EventSpec:
    return _event(SECURITY, 4720, when, {
        "TargetUserName": name, "TargetDomainName": "EX01", "TargetSid": sid, **_SUBJECT,
        "PrivilegeList": "-", "SamAccountName": name, "DisplayName": "%%1793",
        "UserPrincipalName": "-", "HomeDirectory": "%%1793", "HomePath": "%%1793",
        "ScriptPath": "%%1793", "ProfilePath": "%%1793", "UserWorkstations": "%%1793",
        "PasswordLastSet": "%%1794", "AccountExpires": "%%1794", "PrimaryGroupId": "513",
        "AllowedToDelegateTo": "-", "OldUacValue": "0x0", "NewUacValue": "0x15",
        "UserAccountControl": "%%2080", "UserParameters": "%%1793", "SidHistory": "-",
        "LogonHours": "%%1797"})


def member_added(when: datetime, member_sid: str, member_name: str = "-",
                 group: str = "Administrators", group_sid: str = "S-1-5-32-544") -> EventSpec:
    return _event(SECURITY, 4732, when, {
        "MemberName": member_name, "MemberSid": member_sid, "TargetUserName": group,
        "TargetDomainName": "Builtin", "TargetSid": group_sid, **_SUBJECT,
        "PrivilegeList": "-"})


def script_block(when: datetime, text: str, path: str = "") -> EventSpec:
    return _event(PS_OPERATIONAL, 4104, when, {
        "MessageNumber": "1", "MessageTotal": "1", "ScriptBlockText": text,
        "ScriptBlockId": "a1b2c3d4-0000-4000-8000-000000000001", "Path": path})


def pipeline_module(when: datetime, command: str, payload: str) -> EventSpec:
    return _event(PS_OPERATIONAL, 4103, when, {
        "ContextInfo": f"        Severity = Informational\r\n        Host Name = ConsoleHost\r\n"
                       f"        Command Name = {command}\r\n",
        "UserData": "", "Payload": payload})


def pipeline_classic(when: datetime, command: str, payload: str) -> EventSpec:
    """Windows PowerShell 800: three unnamed values (command, details, payload)."""
    return _event(PS_CLASSIC, 800, when, [
        command, f"\tDetailSequence=1\r\n\tHostApplication=powershell.exe\r\n"
                 f"\tCommandLine={command}\r\n", payload])


def service_installed(when: datetime, name: str, image: str) -> EventSpec:
    return _event(SYSTEM, 7045, when, {
        "ServiceName": name, "ImagePath": image, "ServiceType": "user mode service",
        "StartType": "demand start", "AccountName": "LocalSystem"})


def task_registered(when: datetime, name: str) -> EventSpec:
    return _event(TASKS, 106, when, {"TaskName": name, "UserContext": "CORP\\admin"})


def task_process(when: datetime, name: str, path: str) -> EventSpec:
    return _event(TASKS, 129, when, {"TaskName": name, "Path": path, "ProcessID": "5124",
                                     "Priority": "7"})
